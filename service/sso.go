package service

import (
	"context"
	"log/slog"

	"github.com/portcullisdb/portcullis/config"
	"github.com/portcullisdb/portcullis/portal"
)

// ssoOptions builds browser login from cfg.SSO; nil when it is off.
func ssoOptions(ctx context.Context, cfg *config.Config, s *Service, log *slog.Logger) (*portal.SSOOptions, error) {
	return nil, nil
}
