package config_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/example/custom-nginx/internal/config"
)

// declared is every key Pulumi.yaml must declare, with its type and default.
var declared = map[string]struct{ typ, def string }{
	config.KeyRegistryServer:   {"string", "docker.io"},
	config.KeyRegistryUsername: {"string", ""},
	config.KeyRepository:       {"string", ""},
	config.KeyImageTag:         {"string", "v1"},
	config.KeyHostPort:         {"integer", "8080"},
	config.KeyBaseImage:        {"string", ""},
	config.KeyPush:             {"boolean", "true"},
	config.KeyPlatform:         {"string", ""},
	config.KeyPlatforms:        {"string", ""},
	config.KeyHostIP:           {"string", "0.0.0.0"},
	config.KeySiteHost:         {"string", ""},
	config.KeyMode:             {"string", "container"},
	config.KeyReplicas:         {"integer", "2"},
	config.KeyServiceMode:      {"string", "replicated"},
	config.KeyPublishMode:      {"string", "ingress"},
	config.KeyHTTPSPort:        {"integer", "8443"},
	config.KeyTLSCertificate:   {"string", ""},
	config.KeyTLSTrustedCA:     {"string", ""},
}

// keyConstants are the values of the Key* constants in config.go, read from the source so
// that a key added there cannot be missing from declared unnoticed.
func keyConstants(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Values) != 1 || !strings.HasPrefix(spec.Names[0].Name, "Key") {
			return true
		}
		lit, ok := spec.Values[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Fatalf("%s is not a string literal", spec.Names[0].Name)
		}
		key, _ := strconv.Unquote(lit.Value)
		keys = append(keys, key)
		return true
	})
	return keys
}

func TestDeclaredIsEveryKeyButTheSecrets(t *testing.T) {
	keys := keyConstants(t)
	if !slices.Contains(keys, config.KeyRegistryPassword) {
		t.Fatalf("Key* constants %v: registryPassword missing, the parse went wrong", keys)
	}
	for _, key := range keys {
		_, ok := declared[key]
		secret := slices.Contains(config.SecretKeys, key)
		if secret && ok {
			t.Errorf("%s is in declared: a secret key must stay undeclared (Pulumi.yaml says why)", key)
		}
		if !secret && !ok {
			t.Errorf("config key %s is missing from declared", key)
		}
	}
	if want := len(keys) - len(config.SecretKeys); len(declared) != want {
		t.Errorf("declared has %d keys, want %d: one for each Key* constant but the secret ones", len(declared), want)
	}
}

// TestProjectFilesLoadLikeTheCLI loads Pulumi.yaml and Pulumi.dev.yaml with the SDK's own
// loaders, which validate them against the project schema the CLI uses.
func TestProjectFilesLoadLikeTheCLI(t *testing.T) {
	project, err := workspace.LoadProject(projectRoot + "/Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if project.Runtime.Name() != "go" {
		t.Errorf("runtime %q", project.Runtime.Name())
	}
	if got := project.Runtime.Options()["buildTarget"]; got != ".pulumi/bin/custom-nginx.exe" {
		t.Errorf("runtime.options.buildTarget = %v: without it every `pulumi up` relinks the program", got)
	}
	for key := range project.Config {
		if _, ok := declared[key]; !ok {
			t.Errorf("config key %s is declared but the program does not read it", key)
		}
	}
	for key, want := range declared {
		decl, ok := project.Config[key]
		if !ok {
			t.Errorf("config key %s is not declared", key)
			continue
		}
		if decl.Type == nil || *decl.Type != want.typ || decl.Description == "" || decl.Default == nil {
			t.Errorf("config %s: type %v (want %q), description %q, default %v: each needs all three", key, decl.Type, want.typ, decl.Description, decl.Default)
		}
	}
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	if _, err := workspace.LoadProjectStack(sink, project, projectRoot+"/Pulumi.dev.yaml"); err != nil {
		t.Fatalf("Pulumi.dev.yaml: %v", err)
	}
}
