package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// createLocalCmd makes a local account through the admin API and prints
// its random initial password once; the person logs in at /login, sets
// up TOTP there and should change the password on /account.
func createLocalCmd() *cobra.Command {
	var role, display string
	cmd := &cobra.Command{
		Use:   "create-local USER [--role ROLE]",
		Short: "Create a local account (password + TOTP) and print its initial password once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				UserName string `json:"user_name"`
				Password string `json:"password"`
			}
			body := map[string]string{"user_name": args[0], "role": role, "display_name": display}
			if err := a.do("POST", "/v1/admin/users/local", body, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created %s; give them this initial password over a private channel (it is not shown again), and %s/login to log in and set up their authenticator:\n", out.UserName, a.server)
			fmt.Fprintln(cmd.OutOrStdout(), out.Password)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "the user's role (a configured role, or administrator for the web console)")
	cmd.Flags().StringVar(&display, "display-name", "", "the name shown in the console")
	return cmd
}
