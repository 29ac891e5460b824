package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// outputFlags gives a command that prints records --json and
// -o/--output table|json.
func outputFlags(cmd *cobra.Command) {
	cmd.Flags().Bool("json", false, "print JSON (same as -o json); field names are stable")
	cmd.Flags().StringP("output", "o", "table", "output format: table or json")
}

// wantJSON reports whether the command was asked for JSON.
func wantJSON(cmd *cobra.Command) (bool, error) {
	if j, _ := cmd.Flags().GetBool("json"); j {
		return true, nil
	}
	switch o, _ := cmd.Flags().GetString("output"); o {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	default:
		return false, fmt.Errorf("--output %q: use table or json", o)
	}
}

// printJSON writes v indented, with a final newline.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
