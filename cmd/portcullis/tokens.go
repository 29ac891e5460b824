package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// tokensCmd is `portcullis tokens revoke --identity NAME`: the tokens of
// a person or a workload identity issued until now are refused, and its
// sessions end on every node.
func tokensCmd() *cobra.Command {
	tokens := &cobra.Command{Use: "tokens", Short: "Revoke issued tokens (admin API)"}
	serverFlag(tokens)
	var identity string
	revoke := &cobra.Command{
		Use: "revoke --identity NAME", Short: "Refuse every token of a person or workload identity issued until now, and end its sessions",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identity == "" {
				return errors.New("--identity is required: the user name (a person's, or the one a workload rule gives)")
			}
			a, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			if err := a.do("POST", "/v1/admin/logins/end", map[string]string{"identity": identity}, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "the tokens of", identity, "issued until now are refused; its sessions end within a second on every node")
			return nil
		},
	}
	revoke.Flags().StringVar(&identity, "identity", "", "the user name whose tokens to revoke")
	tokens.AddCommand(revoke)
	return tokens
}
