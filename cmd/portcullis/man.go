package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd writes the man pages, one per command, from the commands
// themselves (`make man` runs it into man/).
func manCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man [--dir DIR]",
		Short: "Write the man pages (portcullis.1, portcullis-login.1, ...) into a folder",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // the same pages for the same binary
			header := &doc.GenManHeader{Title: "PORTCULLIS", Section: "1", Source: "portcullis " + version, Manual: "portcullis manual"}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote the man pages to %s (man -l %s/portcullis.1)\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "the folder to write them into")
	return cmd
}
