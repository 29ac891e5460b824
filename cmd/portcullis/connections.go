package main

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// connectionsCmd turns IdP connections (and their "enforce MFA") on and
// off as the console does: the way back in when the IdP fails after
// every administrator has logged in through it.
func connectionsCmd() *cobra.Command {
	conns := &cobra.Command{Use: "connections", Short: "IdP connections: enable, disable, enforce MFA (admin API)"}
	serverFlag(conns)
	list := &cobra.Command{
		Use: "list", Short: "List the IdP connections and their state", Args: cobra.NoArgs,
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
				Connections []connectionRow `json:"connections"`
			}
			if err := a.do("GET", "/v1/admin/connections", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, nonNil(out.Connections))
			}
			var rows [][]string
			for _, c := range out.Connections {
				changed := "as configured"
				if c.UpdatedBy != "" {
					changed = c.Updated.Local().Format("2006-01-02 15:04") + " by " + c.UpdatedBy
				}
				rows = append(rows, []string{c.Name, strconv.FormatBool(c.Enabled), strconv.FormatBool(c.EnforceMFA), changed})
			}
			table(cmd, "CONNECTION\tENABLED\tENFORCE_MFA\tCHANGED", rows)
			return nil
		},
	}
	outputFlags(list)
	conns.AddCommand(list)
	var enabled, enforceMFA bool
	set := &cobra.Command{
		Use: "set NAME [--enabled=true|false] [--enforce-mfa=true|false]", Short: "Change a connection's state on every node", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]bool{}
			if cmd.Flags().Changed("enabled") {
				body["enabled"] = enabled
			}
			if cmd.Flags().Changed("enforce-mfa") {
				body["enforce_mfa"] = enforceMFA
			}
			if len(body) == 0 {
				return fmt.Errorf("nothing to change: give --enabled=true|false or --enforce-mfa=true|false")
			}
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Status string `json:"status"`
			}
			if err := a.do("PATCH", "/v1/admin/connections/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Status)
			return nil
		},
	}
	set.Flags().BoolVar(&enabled, "enabled", true, "enable (true) or disable (false) logins through the connection")
	set.Flags().BoolVar(&enforceMFA, "enforce-mfa", false, "ask for portcullis' own second factor after the IdP's login")
	conns.AddCommand(set)
	return conns
}
