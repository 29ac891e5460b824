package cloud_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullisdb/portcullis/auth/cloud"
)

// detectEnv is every variable Detect reads.
var detectEnv = []string{
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_ACCESS_KEY_ID", "AWS_PROFILE",
	"AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT",
	"GCE_METADATA_HOST",
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		dmi  map[string]string // files in the DMI directory
		gce  bool              // what the metadata probe finds
		want string
	}{
		{name: "nothing", want: ""},
		{name: "EKS IRSA", env: map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks/token"}, want: "aws"},
		{name: "ECS task role", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, want: "aws"},
		{name: "EKS pod identity", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}, want: "aws"},
		{name: "static AWS keys", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIA..."}, want: "aws"},
		{name: "AWS profile", env: map[string]string{"AWS_PROFILE": "prod"}, want: "aws"},
		{name: "AKS workload identity", env: map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}, want: "azure"},
		{name: "App Service managed identity", env: map[string]string{"IDENTITY_ENDPOINT": "http://127.0.0.1:41741/MSI/token/"}, want: "azure"},
		{name: "Cloud Shell", env: map[string]string{"MSI_ENDPOINT": "http://localhost:50342/oauth2/token"}, want: "azure"},
		{name: "GCE_METADATA_HOST", env: map[string]string{"GCE_METADATA_HOST": "127.0.0.1:8080"}, want: "gcp"},
		{
			name: "a platform identity beats AWS keys a person left set",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AKIA...", "AZURE_FEDERATED_TOKEN_FILE": "/token"},
			want: "azure",
		},
		{
			name: "GKE metadata host beats an AWS profile",
			env:  map[string]string{"AWS_PROFILE": "dev", "GCE_METADATA_HOST": "169.254.169.254"},
			want: "gcp",
		},
		{name: "EC2 by DMI", dmi: map[string]string{"sys_vendor": "Amazon EC2\n"}, want: "aws"},
		{name: "Azure VM by DMI", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77\n"}, want: "azure"},
		{name: "Hyper-V that is not Azure", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "0000"}, want: ""},
		{name: "GCE by DMI", dmi: map[string]string{"product_name": "Google Compute Engine\n"}, want: "gcp"},
		{name: "env beats DMI", env: map[string]string{"AWS_PROFILE": "x"}, dmi: map[string]string{"product_name": "Google"}, want: "aws"},
		{name: "GKE or Cloud Run by the metadata probe", gce: true, want: "gcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range detectEnv {
				t.Setenv(k, tc.env[k])
			}
			dir := t.TempDir()
			for name, content := range tc.dmi {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			probed := false
			cloud.SetDetectSources(t, dir, func(context.Context) bool { probed = true; return tc.gce })
			if got := cloud.Detect(t.Context()); got != tc.want {
				t.Errorf("Detect() = %q, want %q", got, tc.want)
			}
			if wantProbe := tc.want == "" || tc.gce; probed != wantProbe {
				t.Errorf("metadata probed: %v, want %v (only when nothing cheaper answered)", probed, wantProbe)
			}
		})
	}
}
