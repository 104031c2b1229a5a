package management_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// docBlock is a fenced block of docs/management-api.md.
type docBlock struct {
	lang, info string
	line       int
	body       string
}

var fenceRE = regexp.MustCompile("(?m)^```([a-z]*)([^\\n]*)\\n")

func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var blocks []docBlock
	for pos := 0; ; {
		m := fenceRE.FindStringSubmatchIndex(text[pos:])
		if m == nil {
			return blocks
		}
		start := pos + m[1]
		end := strings.Index(text[start:], "\n```")
		if end < 0 {
			t.Fatalf("%s: unterminated fence at byte %d", path, pos+m[0])
		}
		blocks = append(blocks, docBlock{
			lang: text[pos+m[2] : pos+m[3]],
			info: strings.TrimSpace(text[pos+m[4] : pos+m[5]]),
			line: strings.Count(text[:pos+m[0]], "\n") + 1,
			body: text[start : start+end+1],
		})
		pos = start + end + 4
	}
}

// TestDocsCurlExamples runs the walk-through of docs/management-api.md:
// every `sh` block (not `sh setup`, whose variables the test provides) in
// one bash session against a real server, each checked against the `json`
// or `text` block that follows it.
func TestDocsCurlExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			runDocs(t, backend)
		})
	}
}

func runDocs(t *testing.T, backend string) {
	a := start(t, backend)
	blocks := docBlocks(t, "../../docs/management-api.md")
	type step struct {
		sh     docBlock
		expect *docBlock
	}
	var steps []step
	for i, b := range blocks {
		if b.lang != "sh" || b.info != "" {
			continue
		}
		s := step{sh: b}
		if i+1 < len(blocks) && (blocks[i+1].lang == "json" || blocks[i+1].lang == "text") {
			s.expect = &blocks[i+1]
		}
		steps = append(steps, s)
	}
	if len(steps) < 8 {
		t.Fatalf("found %d runnable sh blocks, the walk-through has more", len(steps))
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '\\n@@step %d\\n'\n%s", i, s.sh.body)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"GATEHOUSE_URL="+a.URL,
		"GATEHOUSE_ADMIN_CLIENT_ID="+a.AdminID,
		"GATEHOUSE_ADMIN_CLIENT_SECRET="+a.AdminSecret,
		"AZURE_CLIENT_SECRET="+seedSecret,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	outputs := map[int]string{}
	parts := regexp.MustCompile(`(?m)^@@step (\d+)\n`).Split(stdout.String(), -1)
	for i := 1; i < len(parts); i++ {
		outputs[i-1] = parts[i]
	}
	if err != nil {
		last := len(parts) - 2
		t.Fatalf("the walk-through failed in the block at docs line %d: %v\nstderr:\n%s\noutput:\n%s",
			steps[max(last, 0)].sh.line, err, stderr.String(), outputs[last])
	}
	for i, s := range steps {
		if s.expect == nil {
			continue
		}
		got := strings.TrimSpace(outputs[i])
		if s.expect.lang == "text" {
			if want := strings.TrimSpace(s.expect.body); got != want {
				t.Errorf("docs line %d: output\n%s\nwant (docs line %d)\n%s", s.sh.line, got, s.expect.line, want)
			}
			continue
		}
		var gotV, wantV any
		if err := json.Unmarshal([]byte(got), &gotV); err != nil {
			t.Errorf("docs line %d: output is not JSON: %q", s.sh.line, got)
			continue
		}
		if err := json.Unmarshal([]byte(s.expect.body), &wantV); err != nil {
			t.Fatalf("docs line %d: the example is not JSON: %v", s.expect.line, err)
		}
		if path, ok := docMatch(wantV, gotV, "$"); !ok {
			t.Errorf("docs line %d: the answer differs from the example at docs line %d at %s\ngot: %s", s.sh.line, s.expect.line, path, got)
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), seedSecret) {
		t.Errorf("the walk-through printed the Azure client secret")
	}
}

// docMatch compares an example with an answer: same keys, same values,
// except that an example string written "<...>" matches any value.
func docMatch(want, got any, path string) (string, bool) {
	if s, ok := want.(string); ok && strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return "", got != nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return path + fmt.Sprintf(" (keys: example %d, answer %d)", len(w), len(g)), false
		}
		for k, wv := range w {
			if p, ok := docMatch(wv, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := docMatch(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	}
	return path, reflect.DeepEqual(want, got)
}
