package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
)

func newServeCmd() *cobra.Command {
	var (
		demo          bool
		demoDirectory string
		anyDatabase   bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Gatehouse",
		Long: `Run Gatehouse. Settings come from GATEHOUSE_* environment variables;
flags override them. Secrets (GATEHOUSE_SECRET_KEY, GATEHOUSE_ADMIN_CLIENT_SECRET)
are read from the environment only.

On the first start with an empty SQLite database and no admin application
configured, Gatehouse generates one and writes its credentials to a file
next to the database (<database>.admin, mode 0600), never to the terminal
or the logs. With PostgreSQL, set GATEHOUSE_ADMIN_CLIENT_ID and
GATEHOUSE_ADMIN_CLIENT_SECRET for the first start.

--demo runs on its own database, sqlite:gatehouse-demo.db in the working
directory, unless GATEHOUSE_DATABASE or --database names one; it refuses
a named database that holds applications or connections it did not create,
unless --demo-on-any-database is given. Without --demo, a database holding
the demo's demo-admin application or contoso-demo connection is served
with a warning in the log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			if anyDatabase && !demo {
				return errors.New("--" + demoOnAnyDatabaseFlag + " needs --demo")
			}
			logger := server.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
			// Code without a logger of its own (attack.ClientIP's warning)
			// logs through the default, in the configured format.
			slog.SetDefault(logger)
			ctx := cmd.Context()
			// Once the first signal has started the shutdown, the next one
			// ends the process at once, as it would without a handler: an
			// operator is not held for GATEHOUSE_SHUTDOWN_TIMEOUT by a
			// request that will not finish. Only here: elsewhere a second
			// Ctrl-C could end the process at a hidden prompt, leaving the
			// terminal without echo.
			context.AfterFunc(ctx, func() { signal.Reset(os.Interrupt, syscall.SIGTERM) })
			gc, fromEnv := server.TuneGC(os.Getenv)
			logger.InfoContext(ctx, "garbage collector", "gogc", gc, "from_env", fromEnv)
			// Bound before the database is opened: a start that cannot
			// listen (a busy port, often a Gatehouse already running) must
			// change nothing, neither generate an admin application nor
			// repoint the demo connection of the one running.
			l, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("%s: %w", settingName(cfg, "GATEHOUSE_ADDR"), err)
			}
			defer l.Close()
			// Port 0 picks a free port: an issuer derived from the address
			// names the port picked, or every token and the demo's printed
			// lines would name port 0.
			if _, port, _ := net.SplitHostPort(cfg.Addr); port == "0" && cfg.SetBy("GATEHOUSE_ISSUER") == "" {
				cfg.Issuer = config.DefaultIssuer(l.Addr().String(), cfg.TLS())
			}
			if demo {
				return runDemo(ctx, cmd.OutOrStdout(), cfg, logger, l, demoDirectory, anyDatabase)
			}
			srv, err := server.New(ctx, cfg, logger, os.Stderr)
			if err != nil {
				return err
			}
			defer srv.Close()
			// The look is advice: failing it must not keep a broker down.
			if err := warnDemoObjects(ctx, cfg, logger); err != nil {
				logger.WarnContext(ctx, "could not look for the demo's objects", "error", err)
			}
			return srv.Serve(ctx, l)
		},
	}
	config.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&demo, "demo", false, "run the Entra ID emulator in-process with a demo application and waad connection, and print how to sign in")
	cmd.Flags().BoolVar(&anyDatabase, demoOnAnyDatabaseFlag, false, "with --demo and a database named by GATEHOUSE_DATABASE or --database: run even if it holds applications or connections the demo did not create (it adds demo-admin and prints its secret)")
	cmd.Flags().StringVar(&demoDirectory, "demo-directory", "", "directory file of the --demo emulator (default: the built-in examples/entra-directory.yaml)")
	return cmd
}

// settingName names what gave the setting env: its flag, or env itself
// when it came from the environment or is the default.
func settingName(cfg *config.Config, env string) string {
	if by := cfg.SetBy(env); by != "" {
		return by
	}
	return env
}
