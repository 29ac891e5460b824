package cloud

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// gceProbeTimeout bounds Detect's one network probe.
const gceProbeTimeout = 500 * time.Millisecond

// azureAssetTag is the DMI chassis asset tag of every Azure VM.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// Where Detect looks; tests replace them.
var (
	dmiDir = "/sys/class/dmi/id"
	onGCE  = func(ctx context.Context) bool {
		c := metadata.NewWithOptions(&metadata.Options{Client: &http.Client{Timeout: gceProbeTimeout}})
		return c.OnGCEWithContext(ctx)
	}
)

// Detect guesses the cloud this process runs on, for --cloud auto: "aws",
// "azure", "gcp", or "" when it cannot tell. It uses cheap signals, first
// match wins:
//  1. identities the platform injects into the environment:
//     aws   AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA), AWS_CONTAINER_CREDENTIALS_FULL_URI
//     or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS, EKS Pod Identity);
//     azure AZURE_FEDERATED_TOKEN_FILE (AKS workload identity), IDENTITY_ENDPOINT
//     (App Service, Functions, Container Apps, Arc), MSI_ENDPOINT (Cloud Shell);
//     gcp   GCE_METADATA_HOST;
//  2. AWS credentials a person or a pipeline set: AWS_ACCESS_KEY_ID, AWS_PROFILE;
//  3. the machine's DMI data (Linux): an EC2 instance ("Amazon EC2" vendor),
//     an Azure VM (its chassis asset tag), a GCE VM ("Google" product);
//  4. one probe of the GCE metadata server (169.254.169.254 and
//     metadata.google.internal), bounded by 500ms and ctx: GKE, Cloud Run.
//
// AWS and Azure metadata services are not probed: a VM there is found by
// step 3, and a container there gets step 1.
func Detect(ctx context.Context) string {
	set := func(names ...string) bool {
		for _, n := range names {
			if os.Getenv(n) != "" {
				return true
			}
		}
		return false
	}
	switch {
	case set("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
		return PlatformAWS
	case set("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
		return PlatformAzure
	case set("GCE_METADATA_HOST"):
		return PlatformGCP
	case set("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
		return PlatformAWS
	}
	if p := detectDMI(); p != "" {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, gceProbeTimeout)
	defer cancel()
	done := make(chan bool, 1)
	go func() { done <- onGCE(ctx) }()
	select {
	case on := <-done:
		if on {
			return PlatformGCP
		}
	case <-ctx.Done():
	}
	return ""
}

// detectDMI reads the machine's DMI data; "" when it says nothing.
func detectDMI() string {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dmiDir, name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	switch {
	case strings.HasPrefix(read("sys_vendor"), "Amazon EC2"), strings.HasPrefix(read("board_vendor"), "Amazon EC2"):
		return PlatformAWS
	case read("chassis_asset_tag") == azureAssetTag:
		return PlatformAzure
	case read("product_name") == "Google Compute Engine", read("product_name") == "Google":
		return PlatformGCP
	}
	return ""
}
