package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/management"
)

func newConnectionsCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:     "connections",
		Aliases: []string{"connection"},
		Short:   "Manage Microsoft Azure AD connections (Management API /api/v2/connections) of a running Gatehouse",
		Long: `Manage Microsoft Azure AD (strategy waad) connections through the
Management API of a running Gatehouse. The flags follow the fields of the
Auth0 dashboard.

Secrets are never flags. The admin application's secret comes from
GATEHOUSE_ADMIN_CLIENT_SECRET, else from a hidden prompt, else from a line
of stdin; the Azure client secret of a connection from a hidden prompt, else
from the next line of stdin.`,
	}
	f.bind(cmd)
	cmd.AddCommand(newConnCreateCmd(&f), newConnListCmd(&f), newConnGetCmd(&f), newConnUpdateCmd(&f),
		newConnDeleteCmd(&f), newConnEnableCmd(&f))
	return cmd
}

// connFlags are the dashboard's fields of a Microsoft Azure AD connection.
type connFlags struct {
	displayName, logoURL, tenantDomain, clientID, identityAPI, appID, sync string
	authorityHost, graphHost                                               string
	domainAliases, allowedTenants, options                                 []string
	common, extProfile, extGroups, extNestedGroups, apiEnableUsers         bool
}

func (c *connFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&c.displayName, "display-name", "", "Display name (login button text)")
	fl.StringVar(&c.logoURL, "logo-url", "", "Logo URL (options.icon_url)")
	fl.StringVar(&c.tenantDomain, "tenant-domain", "", "Microsoft Azure AD Domain, e.g. contoso.onmicrosoft.com")
	fl.StringSliceVar(&c.domainAliases, "domain-alias", nil, "Domain alias (repeatable or comma-separated)")
	fl.StringVar(&c.clientID, "client-id", "", "Client ID: the Application (client) ID of the Azure app")
	fl.BoolVar(&c.common, "use-common-endpoint", false, "Use common endpoint (multi-tenant)")
	fl.StringSliceVar(&c.allowedTenants, "allowed-tenant", nil, "tenant id accepted with the common endpoint (Gatehouse; repeatable)")
	fl.StringVar(&c.identityAPI, "identity-api", "", "Identity API: v2 ("+azuread.IdentityAPIV2+") or v1 ("+azuread.IdentityAPIV1+")")
	fl.StringVar(&c.appID, "app-id", "", "App ID URI of the Web API (required with the v1 Identity API for password logins)")
	fl.BoolVar(&c.extProfile, "ext-profile", false, "Extended attributes (options.ext_profile)")
	fl.BoolVar(&c.extGroups, "ext-groups", false, "Security groups (options.ext_groups)")
	fl.BoolVar(&c.extNestedGroups, "ext-nested-groups", false, "Nested groups (options.ext_nested_groups)")
	fl.BoolVar(&c.apiEnableUsers, "api-enable-users", false, "Auth0 APIs (options.api_enable_users)")
	fl.StringVar(&c.sync, "sync-user-profile", "", "Sync user profile attributes: on_each_login, on_first_login or never_on_login")
	fl.StringVar(&c.authorityHost, "authority-host", "", "identity platform base URL (Gatehouse; Microsoft's national clouds, or a host the server allows in GATEHOUSE_UPSTREAM_HOSTS)")
	fl.StringVar(&c.graphHost, "graph-host", "", "Microsoft Graph base URL (Gatehouse)")
	fl.StringArrayVar(&c.options, "option", nil, "any other option as key=value; a JSON value is used as such (repeatable)")
}

// apply writes the flags the user set into the connection body and its
// options.
func (c *connFlags) apply(cmd *cobra.Command, body, opts map[string]any) error {
	changed := cmd.Flags().Changed
	set := func(flag, key string, v any) {
		if changed(flag) {
			opts[key] = v
		}
	}
	if changed("display-name") {
		body["display_name"] = c.displayName
	}
	set("logo-url", "icon_url", c.logoURL)
	set("tenant-domain", "tenant_domain", c.tenantDomain)
	set("domain-alias", "domain_aliases", c.domainAliases)
	set("client-id", "client_id", c.clientID)
	set("use-common-endpoint", "useCommonEndpoint", c.common)
	set("allowed-tenant", "allowed_tenants", c.allowedTenants)
	set("app-id", "app_id", c.appID)
	set("ext-profile", "ext_profile", c.extProfile)
	set("ext-groups", "ext_groups", c.extGroups)
	set("ext-nested-groups", "ext_nested_groups", c.extNestedGroups)
	set("api-enable-users", "api_enable_users", c.apiEnableUsers)
	set("sync-user-profile", "set_user_root_attributes", c.sync)
	set("authority-host", "authority_host", c.authorityHost)
	set("graph-host", "graph_host", c.graphHost)
	if changed("identity-api") {
		switch c.identityAPI {
		case "v2":
			opts["identity_api"] = azuread.IdentityAPIV2
		case "v1":
			opts["identity_api"] = azuread.IdentityAPIV1
		default:
			opts["identity_api"] = c.identityAPI
		}
	}
	for _, kv := range c.options {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--option %q: want key=value", kv)
		}
		if k == "client_secret" {
			return errors.New("--option client_secret: secrets are read from a prompt or stdin, never from a flag")
		}
		var parsed any
		if err := json.Unmarshal([]byte(v), &parsed); err != nil {
			parsed = v
		}
		opts[k] = parsed
	}
	return nil
}

func newConnCreateCmd(f *apiFlags) *cobra.Command {
	var (
		c          connFlags
		name       string
		enableApps []string
		noSecret   bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a Microsoft Azure AD connection (prompts for the Azure client secret)",
		Example: `  gatehouse connections create --name contoso-azure-ad --display-name "Contoso employees" \
    --tenant-domain contoso.onmicrosoft.com --client-id 0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f \
    --identity-api v1 --app-id api://contoso-web-api --ext-profile --ext-groups --enable-app <client id>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// basic_profile is always on: the dashboard's Attributes.
			opts := map[string]any{"basic_profile": true}
			body := map[string]any{"name": name, "strategy": azuread.Strategy, "options": opts}
			if err := c.apply(cmd, body, opts); err != nil {
				return err
			}
			if len(enableApps) > 0 {
				body["enabled_clients"] = enableApps
			}
			secrets := newSecretReader(cmd)
			m, err := f.connect(cmd.Context(), secrets)
			if err != nil {
				return err
			}
			if !noSecret {
				s, err := readConnectionSecret(secrets, "Client secret of the Azure app", "--no-client-secret creates the connection without one")
				if err != nil {
					return err
				}
				opts["client_secret"] = s
			}
			var out map[string]any
			h, err := m.do(cmd.Context(), http.MethodPost, "api/v2/connections", body, &out)
			if err != nil {
				return err
			}
			printWarnings(cmd, h)
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	c.bind(cmd)
	cmd.Flags().StringVar(&name, "name", "", "Connection name: unique, letters, digits and dashes; cannot be changed (required)")
	cmd.Flags().StringSliceVar(&enableApps, "enable-app", nil, "client id of an application to enable the connection for (repeatable)")
	cmd.Flags().BoolVar(&noSecret, "no-client-secret", false, "do not ask for a client secret")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newConnUpdateCmd(f *apiFlags) *cobra.Command {
	var (
		c                       connFlags
		newSecret, removeSecret bool
	)
	cmd := &cobra.Command{
		Use:   "update ID|NAME",
		Short: "Change a connection; options not named keep their values, the client secret too unless --client-secret or --remove-client-secret",
		Long: `Change a connection; options not named keep their values, the client
secret too unless --client-secret asks for a new one or
--remove-client-secret drops it. Changing --authority-host or --graph-host
of a connection with a secret needs --client-secret as well: the API does
not send a stored secret to a new host. Either host must be Microsoft's or
one the server's operator allows in GATEHOUSE_UPSTREAM_HOSTS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secrets := newSecretReader(cmd)
			m, err := f.connect(cmd.Context(), secrets)
			if err != nil {
				return err
			}
			cur, err := m.connection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// PATCH replaces options as a whole: send all of them back, the
			// secret marker included, which keeps the stored secret.
			opts, _ := cur["options"].(map[string]any)
			if opts == nil {
				opts = map[string]any{}
			}
			body := map[string]any{"options": opts}
			if dn, ok := cur["display_name"]; ok {
				body["display_name"] = dn
			}
			if err := c.apply(cmd, body, opts); err != nil {
				return err
			}
			switch {
			case newSecret:
				s, err := readConnectionSecret(secrets, "New client secret of the Azure app", "--remove-client-secret removes the stored one")
				if err != nil {
					return err
				}
				opts["client_secret"] = s
			case removeSecret:
				// The API reads an empty secret as "remove the stored one".
				opts["client_secret"] = ""
			}
			var out map[string]any
			h, err := m.do(cmd.Context(), http.MethodPatch, "api/v2/connections/"+url.PathEscape(cur["id"].(string)), body, &out)
			if err != nil {
				return err
			}
			printWarnings(cmd, h)
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	c.bind(cmd)
	cmd.Flags().BoolVar(&newSecret, "client-secret", false, "read a new Azure client secret from a prompt or stdin")
	cmd.Flags().BoolVar(&removeSecret, "remove-client-secret", false, "remove the stored Azure client secret (for a public Azure app)")
	cmd.MarkFlagsMutuallyExclusive("client-secret", "remove-client-secret")
	return cmd
}

// readConnectionSecret reads a connection's client secret and refuses an
// empty one: the API takes "" as "remove the stored secret", so an empty
// line or an Enter at the prompt would otherwise delete it. instead says
// how to do without one.
func readConnectionSecret(secrets *secretReader, what, instead string) (string, error) {
	s, err := secrets.read(what)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s: empty; nothing was changed (%s)", what, instead)
	}
	return s, nil
}

func newConnListCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List connections",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, _ []string) error {
			var all []map[string]any
			q := "take=100"
			for {
				var page struct {
					Connections []map[string]any `json:"connections"`
					Next        string           `json:"next"`
				}
				if _, err := m.do(cmd.Context(), http.MethodGet, "api/v2/connections?"+q, nil, &page); err != nil {
					return err
				}
				all = append(all, page.Connections...)
				if page.Next == "" {
					break
				}
				q = "take=100&from=" + url.QueryEscape(page.Next)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTRATEGY\tDISPLAY NAME\tENABLED CLIENTS")
			for _, c := range all {
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\n", c["id"], c["name"], c["strategy"], c["display_name"], orDash(joinAny(c["enabled_clients"])))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConnGetCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID|NAME",
		Short: "Show a connection (its client secret shows as " + management.SecretMarker + ")",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			c, err := m.connection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), c)
		}),
	}
}

func newConnDeleteCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete a connection",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			c, err := m.connection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if _, err := m.do(cmd.Context(), http.MethodDelete, "api/v2/connections/"+url.PathEscape(c["id"].(string)), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted connection %s (%s)\n", c["name"], c["id"])
			return nil
		}),
	}
}

func newConnEnableCmd(f *apiFlags) *cobra.Command {
	var disable bool
	cmd := &cobra.Command{
		Use:   "enable ID|NAME CLIENT_ID...",
		Short: "Enable (or with --disable, disable) a connection for applications",
		Args:  cobra.MinimumNArgs(2),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			c, err := m.connection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			id := c["id"].(string)
			// The API takes at most 50 changes per request.
			for start := 0; start < len(args[1:]); start += 50 {
				var items []map[string]any
				for _, clientID := range args[1+start : 1+min(start+50, len(args[1:]))] {
					items = append(items, map[string]any{"client_id": clientID, "status": !disable})
				}
				if _, err := m.do(cmd.Context(), http.MethodPatch, "api/v2/connections/"+url.PathEscape(id)+"/clients", items, nil); err != nil {
					return err
				}
			}
			verb := "enabled"
			if disable {
				verb = "disabled"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s connection %s for %s\n", verb, c["name"], strings.Join(args[1:], ", "))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&disable, "disable", false, "disable instead of enable")
	return cmd
}

// connection fetches a connection by id (con_...) or by name.
func (m *mgmt) connection(ctx context.Context, ref string) (map[string]any, error) {
	if strings.HasPrefix(ref, "con_") {
		var c map[string]any
		if _, err := m.do(ctx, http.MethodGet, "api/v2/connections/"+url.PathEscape(ref), nil, &c); err != nil {
			return nil, err
		}
		return c, nil
	}
	var list []map[string]any
	if _, err := m.do(ctx, http.MethodGet, "api/v2/connections?name="+url.QueryEscape(ref), nil, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no connection is named %q", ref)
	}
	return list[0], nil
}

// printWarnings shows the API's Warning headers on stderr.
func printWarnings(cmd *cobra.Command, h http.Header) {
	for _, w := range h.Values("Warning") {
		msg := strings.TrimPrefix(w, "299 gatehouse ")
		if s, err := unquote(msg); err == nil {
			msg = s
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", msg)
	}
}

func unquote(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}
