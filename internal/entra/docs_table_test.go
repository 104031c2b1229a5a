package entra

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDocsErrorTableMatchesCodes: issue 5 wants the full AADSTS table in
// docs/errors.md, so the table and the aadsts map must say the same. Each
// code the map classes is in the table's row of its class, and each code
// the table names is in the map under that row's class, except where the
// row says a code is classed without the map: by Entra's error string
// (policy blocked) or as unknown (misconfigured).
func TestDocsErrorTableMatchesCodes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "| kind | AADSTS codes |")
	if start < 0 {
		t.Fatal("docs/errors.md has no AADSTS table")
	}
	rows := strings.Split(strings.SplitN(doc[start:], "\n\n", 2)[0], "\n")[2:]
	// Row kinds as the table names them, by prefix, and the classes the
	// aadsts map gives their codes.
	type docKind struct {
		prefix   string
		classes  []Class
		unmapped bool // the row may name codes the map does not hold
	}
	kinds := []docKind{
		{"invalid credentials or unknown user of a federated domain", nil, false},
		{"invalid credentials", []Class{ClassInvalidCredentials}, false},
		{"unknown user", []Class{ClassInvalidCredentials}, false},
		{"MFA required", []Class{ClassMFARequired}, false},
		{"policy blocked", []Class{ClassConditionalAccess}, true},
		{"password expired", []Class{ClassPasswordExpired}, false},
		{"account disabled", []Class{ClassAccountDisabled}, false},
		{"account locked", []Class{ClassLocked}, false},
		{"no password to check", []Class{ClassPasswordless}, false},
		{"user not allowed", []Class{ClassUserNotAllowed}, false},
		{"organization not allowed", nil, false},
		{"throttled or unavailable", []Class{ClassThrottled, ClassUnavailable}, false},
		{"misconfigured", []Class{ClassAppMisconfigured, ClassConsentRequired}, true},
	}
	code := regexp.MustCompile(`\b(\d{4,7})(?:–(\d{4,7}))?\b`)
	inTable := map[int]string{}
	for _, row := range rows {
		cells := strings.Split(row, "|")
		if len(cells) < 3 {
			t.Fatalf("malformed row %q", row)
		}
		kind := strings.TrimSpace(cells[1])
		i := slices.IndexFunc(kinds, func(k docKind) bool { return strings.HasPrefix(kind, k.prefix) })
		if i < 0 {
			t.Errorf("row %q is of no known kind", kind)
			continue
		}
		k := kinds[i]
		if k.classes == nil {
			// These rows repeat other rows' codes or name none.
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			from, _ := strconv.Atoi(m[1])
			to := from
			if m[2] != "" {
				to, _ = strconv.Atoi(m[2])
			}
			for c := from; c <= to; c++ {
				info, ok := aadsts[c]
				switch {
				case !ok && !k.unmapped:
					t.Errorf("%s: AADSTS%d is in docs/errors.md but not in the aadsts map", k.prefix, c)
				case ok && !slices.Contains(k.classes, info.class):
					t.Errorf("%s: AADSTS%d is classed %s in the aadsts map", k.prefix, c, info.class)
				case ok:
					inTable[c] = k.prefix
				}
			}
		}
	}
	for c, info := range aadsts {
		if _, ok := inTable[c]; !ok {
			t.Errorf("AADSTS%d (%s) is in the aadsts map but not in docs/errors.md", c, info.class)
		}
	}
}
