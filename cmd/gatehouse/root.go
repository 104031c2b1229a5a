package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: a self-hosted identity broker for Microsoft Entra ID",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newMigrateCmd(),
		newVersionCmd(),
		newSecretsCmd(),
		newTryCmd(),
		newEntraEmulatorCmd(),
		newAppsCmd(),
		newConnectionsCmd(),
		newLogsCmd(),
	)
	return root
}
