package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

func newEntraEmulatorCmd() *cobra.Command {
	var (
		addr, directory, baseURL, stsURL, logLevel string
		pageSize, maxPageSize, keyBits             int
		latency, reuse                             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "entra-emulator",
		Short: "Run a local Microsoft Entra ID and Microsoft Graph emulator",
		Long: `Run a local stand-in for login.microsoftonline.com, Microsoft Graph and the
retired Azure AD Graph, driven by a directory file (see
examples/entra-directory.yaml and docs/entra-emulator.md). Every endpoint is
served on one address; /_emulator/ exposes request counters, fault injection
and signing key rollover.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			dir, err := entra.LoadDirectory(directory)
			if err != nil {
				return err
			}
			srv, err := entra.New(dir, entra.Options{
				STSURL:           stsURL,
				GraphPageSize:    pageSize,
				GraphMaxPageSize: maxPageSize,
				Latency:          latency,
				KeyBits:          keyBits,
				ReuseTokens:      reuse,
				Logger:           log,
			})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			if baseURL == "" {
				baseURL = "http://" + l.Addr().String()
			}
			srv.SetBaseURL(baseURL)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveEmulator(ctx, log, l, srv, baseURL, len(dir.Tenants))
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:9443", "address to listen on")
	f.StringVar(&directory, "directory", "", "directory file (YAML)")
	f.StringVar(&baseURL, "base-url", "", "public URL put in issuers and metadata (default http://ADDR)")
	f.StringVar(&stsURL, "sts-url", "", `base of v1 issuers, e.g. "https://sts.windows.net" (default: the base URL)`)
	f.IntVar(&pageSize, "graph-page-size", 100, "default page size of Graph collections")
	f.IntVar(&maxPageSize, "graph-max-page-size", 0, "cap every Graph page, $top included (0: no cap)")
	f.IntVar(&keyBits, "key-bits", 2048, "RSA signing key size; 1024 is a faster benchmark mode")
	f.DurationVar(&latency, "latency", 0, "latency added to every request")
	f.DurationVar(&reuse, "reuse-tokens", 0, "answer identical grants within this window with the same tokens (benchmark mode)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("directory")
	return cmd
}

// serveEmulator serves until ctx ends, then drains in-flight requests.
func serveEmulator(ctx context.Context, log *slog.Logger, l net.Listener, h http.Handler, baseURL string, tenants int) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	log.Info("entra emulator listening", "addr", l.Addr().String(), "base_url", baseURL, "tenants", tenants)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("entra emulator shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
