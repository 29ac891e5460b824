package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
)

// adminClient calls the portal's admin API. The token comes from
// PORTCULLIS_ADMIN_TOKEN, never a flag, so it stays out of `ps`.
type adminClient struct {
	server string
	token  string
	http   *http.Client
}

func newAdminClient(cmd *cobra.Command) (*adminClient, error) {
	server := serverURL(cmd)
	tok := os.Getenv("PORTCULLIS_ADMIN_TOKEN")
	if tok == "" {
		return nil, errors.New("set PORTCULLIS_ADMIN_TOKEN to the server's admin.token")
	}
	return &adminClient{server: strings.TrimSuffix(server, "/"), token: tok, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request and decodes a JSON answer into out (may be nil).
func (a *adminClient) do(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.server+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach %s: %w", a.server, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) == nil && e.Description != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Description)
		}
		return fmt.Errorf("%s", resp.Status)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

func serverFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().String("server", "", "the portal's URL (default: $PORTCULLIS_SERVER, else the server of the last login, else "+client.DefaultServer+")")
}

// serverURL is the portal a command talks to: --server, else
// $PORTCULLIS_SERVER, else the last login's, else the default.
func serverURL(cmd *cobra.Command) string {
	s, _ := serverSource(cmd)
	return s
}

// serverSource is serverURL and where it came from.
func serverSource(cmd *cobra.Command) (server, source string) {
	flag, _ := cmd.Flags().GetString("server")
	cache, _ := client.DefaultCache() // nil without a config folder: nothing remembered
	return cache.ResolveServer(flag)
}

// The records list commands print with --json; their field names are
// stable (scripts depend on them), whatever the admin API adds.
type (
	userRow struct {
		UserName string `json:"user_name"`
		Active   bool   `json:"active"`
		Role     string `json:"role"`
		Source   string `json:"source"`
	}
	sessionRow struct {
		ID          uint32    `json:"id"`
		Identity    string    `json:"identity"`
		Role        string    `json:"role"`
		BackendUser string    `json:"backend_user"`
		ClientAddr  string    `json:"client_addr"`
		Started     time.Time `json:"started"`
	}
	teamRow struct {
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
		Roles  []string `json:"roles"`
	}
	connectionRow struct {
		Name       string    `json:"name"`
		Enabled    bool      `json:"enabled"`
		EnforceMFA bool      `json:"enforce_mfa"`
		UpdatedBy  string    `json:"updated_by"`
		Updated    time.Time `json:"updated"`
	}
)

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func table(cmd *cobra.Command, header string, rows [][]string) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
}

func usersCmd() *cobra.Command {
	users := &cobra.Command{Use: "users", Short: "Directory users (admin API)"}
	serverFlag(users)
	list := &cobra.Command{
		Use: "list", Short: "List the users the directory holds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := wantJSON(cmd)
			if err != nil {
				return err
			}
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Users []userRow `json:"users"`
			}
			if err := a.do("GET", "/v1/admin/users", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, nonNil(out.Users))
			}
			var rows [][]string
			for _, u := range out.Users {
				rows = append(rows, []string{u.UserName, fmt.Sprint(u.Active), u.Role, u.Source})
			}
			table(cmd, "USER\tACTIVE\tROLE\tSOURCE", rows)
			return nil
		},
	}
	outputFlags(list)
	users.AddCommand(list)
	users.AddCommand(createLocalCmd())
	return users
}

func sessionsCmd() *cobra.Command {
	sessions := &cobra.Command{Use: "sessions", Short: "Live proxied sessions (admin API)"}
	serverFlag(sessions)
	list := &cobra.Command{
		Use: "list", Short: "List the live sessions of the node serving --server", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := wantJSON(cmd)
			if err != nil {
				return err
			}
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Sessions []sessionRow `json:"sessions"`
			}
			if err := a.do("GET", "/v1/admin/sessions", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, nonNil(out.Sessions))
			}
			var rows [][]string
			for _, s := range out.Sessions {
				rows = append(rows, []string{fmt.Sprint(s.ID), s.Identity, s.Role, s.BackendUser, s.ClientAddr, time.Since(s.Started).Round(time.Second).String()})
			}
			table(cmd, "ID\tIDENTITY\tROLE\tBACKEND USER\tCLIENT\tAGE", rows)
			return nil
		},
	}
	outputFlags(list)
	sessions.AddCommand(list, &cobra.Command{
		Use: "kill ID", Short: "End a session, on whichever node holds it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Status string `json:"status"`
			}
			if err := a.do("DELETE", "/v1/admin/sessions/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Status)
			return nil
		},
	})
	return sessions
}

func teamsCmd() *cobra.Command {
	teams := &cobra.Command{Use: "teams", Short: "Teams: directory groups mapped to roles (admin API)"}
	serverFlag(teams)
	var groups, roles string
	set := &cobra.Command{
		Use: "set NAME --groups g1,g2 --roles r1", Short: "Create or replace a team", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			body := map[string][]string{"groups": splitList(groups), "roles": splitList(roles)}
			if err := a.do("PUT", "/v1/admin/teams/"+url.PathEscape(args[0]), body, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "team", args[0], "set")
			return nil
		},
	}
	set.Flags().StringVar(&groups, "groups", "", "comma-separated directory group names")
	set.Flags().StringVar(&roles, "roles", "", "comma-separated role names (from the config's roles)")
	list := &cobra.Command{
		Use: "list", Short: "List teams", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := wantJSON(cmd)
			if err != nil {
				return err
			}
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Teams []struct {
					Name          string
					Groups, Roles []string
				} `json:"teams"`
			}
			if err := a.do("GET", "/v1/admin/teams", nil, &out); err != nil {
				return err
			}
			rows, list := [][]string{}, []teamRow{}
			for _, t := range out.Teams {
				rows = append(rows, []string{t.Name, strings.Join(t.Groups, ","), strings.Join(t.Roles, ",")})
				list = append(list, teamRow{Name: t.Name, Groups: nonNil(t.Groups), Roles: nonNil(t.Roles)})
			}
			if asJSON {
				return printJSON(cmd, list)
			}
			table(cmd, "TEAM\tGROUPS\tROLES", rows)
			return nil
		},
	}
	outputFlags(list)
	teams.AddCommand(list, set, &cobra.Command{
		Use: "delete NAME", Short: "Delete a team", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			if err := a.do("DELETE", "/v1/admin/teams/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "team %s deleted: its members lose the roles it gave them at their next connection\n", args[0])
			return nil
		},
	})
	return teams
}

func scimCmd() *cobra.Command {
	scim := &cobra.Command{Use: "scim", Short: "SCIM directory sync (admin API)"}
	serverFlag(scim)
	scim.AddCommand(&cobra.Command{
		Use: "rotate-token CONNECTION", Short: "Make a new SCIM bearer token for an IdP connection (the old one stops working)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Token string `json:"token"`
			}
			if err := a.do("POST", "/v1/admin/scim/"+url.PathEscape(args[0])+"/token", nil, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "paste this into the IdP's SCIM settings; it is not shown again:")
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	})
	scim.AddCommand(&cobra.Command{
		Use: "delete-token CONNECTION", Short: "Stop an IdP connection's directory sync: its SCIM token stops working (local accounts can be created again)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			if err := a.do("DELETE", "/v1/admin/scim/"+url.PathEscape(args[0])+"/token", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "directory sync of %s is off\n", args[0])
			return nil
		},
	})
	return scim
}

func reloadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the server re-read its config file (as SIGHUP does); an invalid file is refused and the running config stays",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			if err := a.do("POST", "/v1/admin/reload", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "reloaded")
			return nil
		},
	}
	serverFlag(cmd)
	return cmd
}
