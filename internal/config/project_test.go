package config

import (
	"io"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

// TestProjectFilesLoadLikeTheCLI loads Pulumi.yaml and Pulumi.dev.yaml with the SDK's own
// loaders, which validate them against the project schema the CLI uses.
func TestProjectFilesLoadLikeTheCLI(t *testing.T) {
	project, err := workspace.LoadProject("../../Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if project.Runtime.Name() != "go" {
		t.Errorf("runtime %q", project.Runtime.Name())
	}
	if got := project.Runtime.Options()["buildTarget"]; got != ".pulumi/bin/custom-nginx.exe" {
		t.Errorf("runtime.options.buildTarget = %v: without it every `pulumi up` relinks the program", got)
	}
	for key, typ := range map[string]string{
		KeyRegistryServer: "string", KeyRegistryUsername: "string", KeyRepository: "string",
		KeyImageTag: "string", KeyHostPort: "integer", KeyBaseImage: "string", KeyPush: "boolean",
	} {
		decl, ok := project.Config[key]
		if !ok {
			t.Errorf("config key %s is not declared", key)
			continue
		}
		if decl.Type == nil || *decl.Type != typ || decl.Description == "" || decl.Default == nil {
			t.Errorf("config %s: type %v (want %q), description %q, default %v: each needs all three", key, decl.Type, typ, decl.Description, decl.Default)
		}
	}
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	if _, err := workspace.LoadProjectStack(sink, project, "../../Pulumi.dev.yaml"); err != nil {
		t.Fatalf("Pulumi.dev.yaml: %v", err)
	}
}
