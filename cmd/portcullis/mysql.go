package main

import (
	"errors"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
)

// obtainToken returns a fresh token for --server from the cache, or by
// exchanging the cloud identity named.
func obtainToken(cmd *cobra.Command, cloudName string) (client.Entry, error) {
	server := serverURL(cmd)
	cache, err := client.DefaultCache()
	if err != nil {
		return client.Entry{}, err
	}
	return client.Token(cmd.Context(), client.Options{Server: server, Cloud: cloudName, Cache: cache})
}

func mysqlCmd() *cobra.Command {
	var cloudName, role, address string
	cmd := &cobra.Command{
		Use:   "mysql [flags] [-- client args]",
		Short: "Run the mariadb/mysql client through portcullis with your token (never on the command line)",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := obtainToken(cmd, cloudName)
			if err != nil {
				return err
			}
			if address == "" {
				server := serverURL(cmd)
				d, err := client.Discover(cmd.Context(), server)
				if err != nil {
					return err
				}
				address = d.MySQLAddress
			}
			err = client.RunMySQL(cmd.Context(), e, client.MySQLOptions{
				Address: address, Role: role, Args: args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode()) // the client already said why
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cloudName, "cloud", "", "exchange this cloud identity first: aws, azure, gcp or auto")
	cmd.Flags().StringVar(&role, "role", "", "connect with this role (identity/role)")
	cmd.Flags().StringVar(&address, "address", "", "the proxy's host:port (default: what the portal advertises)")
	serverFlag(cmd)
	return cmd
}
