package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func newMigrateCmd() *cobra.Command {
	var database string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config.DSNHasPassword(database) {
				return errors.New(config.DatabaseFlagPassword)
			}
			if database == "" {
				database = os.Getenv("GATEHOUSE_DATABASE")
			}
			if database == "" {
				database = "sqlite:gatehouse.db"
			}
			ctx := cmd.Context()
			st, err := sqlstore.Open(ctx, database, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				return err
			}
			v, err := st.CurrentVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database at schema version %d\n", v)
			return nil
		},
	}
	cmd.Flags().StringVar(&database, "database", "", `sqlite:<path> or a postgres:// DSN [$GATEHOUSE_DATABASE, default "sqlite:gatehouse.db"]`)
	return cmd
}
