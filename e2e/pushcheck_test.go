package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testbed"
)

// TestPushCheckAgainstARealRegistry asks a real registry with basic auth (Debian's
// docker-registry, as the acceptance tests use): the right login may push, a wrong one is
// refused naming registryPassword, and a registry that is down is named by registryServer.
func TestPushCheckAgainstARealRegistry(t *testing.T) {
	reg := testbed.RequireRegistry(t, "ci", "right-password")
	cfg := config.Config{RegistryServer: reg.Addr, RegistryUsername: reg.User, RegistryPassword: config.Secret(reg.Password),
		Repository: "team/custom-nginx", ImageTag: "v1"}
	if err := subcommand.CheckPush(context.Background(), cfg); err != nil {
		t.Errorf("the right login: %v", err)
	}

	wrong := cfg
	wrong.RegistryPassword = "wrong-password"
	expectRefused(t, subcommand.CheckPush(context.Background(), wrong), "config registryPassword: "+reg.Addr+" refused the login of ci", "fix: pulumi config set --secret registryPassword")

	reg.Kill()
	expectRefused(t, subcommand.CheckPush(context.Background(), cfg), "config registryServer: cannot reach the registry "+reg.Addr, "connection refused")
}

func expectRefused(t *testing.T, err error, says ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the check passed, want it to say %q", says)
	}
	t.Logf("refused: %v", err)
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the check's error does not say %q:\n%v", s, err)
		}
	}
	if strings.Contains(err.Error(), "right-password") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("the check's error shows a password: %v", err)
	}
}
