package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

var linkNext = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// newLogsCmd prints tenant log events as JSON lines, one event a line,
// for a terminal or a log shipper: the newest ones, or by checkpoint
// every event stored after one, following new ones as they come.
func newLogsCmd() *cobra.Command {
	var (
		f      apiFlags
		from   string
		take   int
		follow bool
		every  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print tenant log events as JSON lines",
		Long: `Print tenant log events (GET /api/v2/logs) as JSON lines, one event a line.

Without --from and --follow: the newest --take events, newest first.
With --from LOG_ID: every event stored after that one, in stored order
(checkpoint paging, as an exporter reads the log). With --follow: keep
reading as events arrive, starting after --from or after the newest event;
stop with Ctrl-C. The last log_id printed is where to resume.`,
		Args: cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, _ []string) error {
			if take < 1 || take > 100 {
				return errors.New("--take must be between 1 and 100")
			}
			ctx := cmd.Context()
			out := json.NewEncoder(cmd.OutOrStdout())
			if from == "" {
				var newest []map[string]any
				if _, err := m.do(ctx, "GET", fmt.Sprintf("api/v2/logs?per_page=%d", take), nil, &newest); err != nil {
					return err
				}
				if !follow {
					for _, e := range newest {
						if err := out.Encode(e); err != nil {
							return err
						}
					}
					return nil
				}
				if len(newest) == 0 {
					return errors.New("--follow needs an event to start after: the log is empty; give --from later")
				}
				from, _ = newest[0]["log_id"].(string)
			}
			path := "api/v2/logs?" + url.Values{"from": {from}, "take": {fmt.Sprint(take)}}.Encode()
			for {
				var events []map[string]any
				h, err := m.do(ctx, "GET", path, nil, &events)
				if err != nil {
					if follow && ctx.Err() != nil {
						// Stopped (Ctrl-C) while asking: not an error.
						return nil
					}
					return err
				}
				for _, e := range events {
					if err := out.Encode(e); err != nil {
						return err
					}
				}
				next := linkNext.FindStringSubmatch(h.Get("Link"))
				if next == nil || !strings.HasPrefix(next[1], m.base) {
					return fmt.Errorf("logs: no usable Link next in the answer: %q", h.Get("Link"))
				}
				path = strings.TrimPrefix(next[1], m.base)
				if len(events) == take {
					continue
				}
				if !follow {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		}),
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&from, "from", "", "print the events stored after this log_id")
	cmd.Flags().IntVar(&take, "take", 50, "events per request (1-100)")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing events as they arrive")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "with --follow, how often to ask for new events")
	return cmd
}
