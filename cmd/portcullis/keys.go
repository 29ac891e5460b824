package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/service"
)

func keysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage portcullis' signing keys"}
	var jwksOut string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the dev issuer's signing key (kept if it exists) and print its JWKS",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := devConfig(cmd)
			if err != nil {
				return err
			}
			created, err := auth.InitDevKey(cfg.DevIssuer.KeyFile)
			if err != nil {
				return err
			}
			dev, err := auth.LoadDevIssuer(cfg.DevIssuer)
			if err != nil {
				return err
			}
			jwks, err := dev.JWKS()
			if err != nil {
				return err
			}
			if created {
				cmd.PrintErrln("created signing key", cfg.DevIssuer.KeyFile)
			} else {
				cmd.PrintErrln("signing key exists, kept", cfg.DevIssuer.KeyFile)
			}
			if jwksOut != "" {
				return os.WriteFile(jwksOut, jwks, 0o644)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(jwks))
			return nil
		},
	}
	initCmd.Flags().StringVar(&jwksOut, "jwks-out", "", "write the public JWKS to this file instead of stdout")
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Sign new tokens with a new key; the old key stays published until every token it signed has expired",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := service.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			log := newLogger(cfg.Log)
			kek, err := service.KeyEncryptionKey(cfg, log)
			if err != nil {
				return err
			}
			issuer, err := service.NewIssuer(cmd.Context(), cfg, kek, st, log)
			if err != nil {
				return err
			}
			old := issuer.SigningKID()
			kid, err := issuer.Rotate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "now signing with %s; %s stays published for %v; running nodes switch within 30s\n", kid, old, cfg.Issuer.MaxTokenTTL)
			return nil
		},
	}
	keys.AddCommand(initCmd, rotate)
	return keys
}

func tokenCmd() *cobra.Command {
	var cloudName string
	token := &cobra.Command{
		Use:   "token [--cloud aws|azure|gcp|auto]",
		Short: "Print a valid access token: cached, or obtained by exchanging this workload's cloud identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := obtainToken(cmd, cloudName)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), e.AccessToken)
			return nil
		},
	}
	token.Flags().StringVar(&cloudName, "cloud", "", "exchange this cloud identity: aws, azure, gcp or auto")
	serverFlag(token)
	var (
		req           auth.MintRequest
		roles, groups string
	)
	mint := &cobra.Command{
		Use:   "mint",
		Short: "Sign a short-lived token with the dev issuer (development only)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := devConfig(cmd)
			if err != nil {
				return err
			}
			if req.Email == "" {
				return errors.New("--email is required: it is the MySQL user name the token is for")
			}
			if req.Subject == "" {
				req.Subject = req.Email
			}
			req.Roles, req.Groups = splitList(roles), splitList(groups)
			dev, err := auth.LoadDevIssuer(cfg.DevIssuer)
			if err != nil {
				return err
			}
			tok, err := dev.Mint(req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	mint.Flags().StringVar(&req.Subject, "sub", "", "subject (default: the email)")
	mint.Flags().StringVar(&req.Email, "email", "", "email, the identity the MySQL user name must match")
	mint.Flags().StringVar(&roles, "roles", "", "comma-separated role names for the roles claim")
	mint.Flags().StringVar(&groups, "groups", "", "comma-separated group names for the groups claim")
	mint.Flags().DurationVar(&req.TTL, "ttl", time.Hour, "token lifetime (at most 24h)")
	token.AddCommand(mint)
	return token
}

// devConfig loads the config and insists the dev issuer is on: minting
// tokens is a development convenience that a production config must not
// allow by accident.
func devConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if !cfg.DevIssuer.Enabled {
		path, _ := cmd.Flags().GetString("config")
		return nil, &configError{errors.New("the dev issuer is off: set dev_issuer.enabled: true in " + path + " to use it (development only)")}
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
