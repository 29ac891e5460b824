package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/service"
)

func certCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cert",
		Short: "Print the CA certificate (PEM) clients verify the proxy with; made in the store at first use when tls.cert_file is unset",
		Long: `Print the CA certificate (PEM) that signed the proxy's certificate, for
clients to verify the proxy: mariadb --ssl-ca=FILE --ssl-verify-server-cert,
Go tls.Config RootCAs, JDBC serverSslCert=FILE. Every node sharing the store
serves a certificate signed by this CA. The portal gives out the same file at
/v1/ca.pem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.TLS.CertFile != "" {
				return fmt.Errorf("tls.cert_file is set (%s): clients verify the proxy with the CA that signed it, not one portcullis made", cfg.TLS.CertFile)
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
			certs, err := service.NewCertKeeper(cmd.Context(), cfg, kek, st, log)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(certs.CAPEM())
			return err
		},
	}
}
