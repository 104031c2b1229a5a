package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"

	"github.com/spf13/cobra"
)

// newAppsCredentialsCmd manages the public keys an application signs its
// private_key_jwt assertions with, and switches it to them.
func newAppsCredentialsCmd(f *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Public keys of an application's private_key_jwt (/api/v2/clients/{id}/credentials)",
		Long: `Manage the public keys an application authenticates with instead of a
client secret (private_key_jwt). Adding a key does not enable it: give
--enable, or use "credentials use". From then on the application's secret is
refused. "credentials use-secret" switches back.`,
	}
	cmd.AddCommand(newCredentialsAddCmd(f), newCredentialsListCmd(f), newCredentialsUseCmd(f), newCredentialsUseSecretCmd(f), newCredentialsRemoveCmd(f))
	return cmd
}

func credentialsPath(clientID string) string {
	return "api/v2/clients/" + url.PathEscape(clientID) + "/credentials"
}

func newCredentialsAddCmd(f *apiFlags) *cobra.Command {
	var (
		pemFile, name, alg, expires string
		fromCert, enable            bool
	)
	cmd := &cobra.Command{
		Use:     "add CLIENT_ID --pem FILE",
		Short:   "Register a public key (PEM public key or X.509 certificate); prints the credential",
		Example: `  gatehouse apps credentials add "$CLIENT_ID" --pem batch-job.pub.pem --name batch-2026 --enable`,
		Args:    cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			pem, err := os.ReadFile(pemFile)
			if err != nil {
				return err
			}
			body := map[string]any{"credential_type": "public_key", "pem": string(pem)}
			if name != "" {
				body["name"] = name
			}
			if alg != "" {
				body["alg"] = alg
			}
			if expires != "" {
				body["expires_at"] = expires
			}
			if fromCert {
				body["parse_expiry_from_cert"] = true
			}
			var cred map[string]any
			if _, err := m.do(cmd.Context(), http.MethodPost, credentialsPath(args[0]), body, &cred); err != nil {
				return err
			}
			if enable {
				id, _ := cred["id"].(string)
				if err := useCredentials(cmd, m, args[0], []string{id}, true); err != nil {
					return fmt.Errorf("credential %s added but not enabled: %w", id, err)
				}
			}
			return printJSON(cmd.OutOrStdout(), cred)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&pemFile, "pem", "", "file holding the public key or certificate (required)")
	fl.StringVar(&name, "name", "", "name of the credential")
	fl.StringVar(&alg, "alg", "", "RS256 (default), RS384 or PS256")
	fl.StringVar(&expires, "expires-at", "", "expiry, RFC 3339 (e.g. 2027-01-31T00:00:00Z)")
	fl.BoolVar(&fromCert, "expiry-from-cert", false, "take the expiry from the certificate")
	fl.BoolVar(&enable, "enable", false, "also accept it, next to the keys already accepted")
	_ = cmd.MarkFlagRequired("pem")
	return cmd
}

func newCredentialsListCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list CLIENT_ID",
		Short: "List an application's credentials",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			var creds []map[string]any
			if _, err := m.do(cmd.Context(), http.MethodGet, credentialsPath(args[0]), nil, &creds); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), creds)
		}),
	}
}

func newCredentialsUseCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "use CLIENT_ID CREDENTIAL_ID...",
		Short: "Accept exactly these credentials (private_key_jwt); the secret is refused from then on",
		Args:  cobra.MinimumNArgs(2),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			return useCredentials(cmd, m, args[0], args[1:], false)
		}),
	}
}

// useCredentials sets the application's private_key_jwt credentials to
// ids, or, with add, to those it accepts already plus ids.
func useCredentials(cmd *cobra.Command, m *mgmt, clientID string, ids []string, add bool) error {
	if add {
		var c struct {
			Methods struct {
				PrivateKeyJWT struct {
					Credentials []struct {
						ID string `json:"id"`
					} `json:"credentials"`
				} `json:"private_key_jwt"`
			} `json:"client_authentication_methods"`
		}
		if _, err := m.do(cmd.Context(), http.MethodGet, "api/v2/clients/"+url.PathEscape(clientID), nil, &c); err != nil {
			return err
		}
		for _, cr := range c.Methods.PrivateKeyJWT.Credentials {
			if !slices.Contains(ids, cr.ID) {
				ids = append(ids, cr.ID)
			}
		}
	}
	refs := make([]map[string]string, len(ids))
	for i, id := range ids {
		refs[i] = map[string]string{"id": id}
	}
	body := map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": refs}}}
	if _, err := m.do(cmd.Context(), http.MethodPatch, "api/v2/clients/"+url.PathEscape(clientID), body, nil); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "application %s now authenticates with private_key_jwt (%d credential(s)); its secret is refused\n", clientID, len(ids))
	return nil
}

func newCredentialsUseSecretCmd(f *apiFlags) *cobra.Command {
	var method string
	cmd := &cobra.Command{
		Use:   "use-secret CLIENT_ID",
		Short: "Go back to the client secret; the credentials stay registered",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			body := map[string]any{"client_authentication_methods": nil, "token_endpoint_auth_method": method}
			if _, err := m.do(cmd.Context(), http.MethodPatch, "api/v2/clients/"+url.PathEscape(args[0]), body, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "application %s now authenticates with its secret (%s)\n", args[0], method)
			return nil
		}),
	}
	cmd.Flags().StringVar(&method, "token-endpoint-auth-method", "client_secret_post", "client_secret_post or client_secret_basic")
	return cmd
}

func newCredentialsRemoveCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove CLIENT_ID CREDENTIAL_ID",
		Short: "Delete a credential the application no longer accepts",
		Args:  cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			if _, err := m.do(cmd.Context(), http.MethodDelete, credentialsPath(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted credential %s\n", args[1])
			return nil
		}),
	}
}
