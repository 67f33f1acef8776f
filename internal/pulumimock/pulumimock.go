package pulumimock

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/subcommand"
)

// What the mock providers answer: the Image's repoDigest (the local image ID with
// skipPush), the RegistryImage's digest and a Command's stdout.
const (
	MockImageID = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	MockDigest  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	MockStdout  = "custom page served"
	// MockIndexDigest is what the publish-index subcommand prints under mocks.
	MockIndexDigest = "sha256:1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea1dea"
)

// Registered is one resource the program registered, as the mock monitor saw it.
type Registered struct {
	Type, Name          string
	Inputs              resource.PropertyMap
	Deps                []string // URNs
	DeleteBeforeReplace bool
	// DeleteBeforeReplaceSet: the program said deleteBeforeReplace, true or false, where
	// otherwise the provider decides.
	DeleteBeforeReplaceSet bool
	IgnoreChanges          []string
	Aliases                []string // the names its aliases give it
}

// Recorder is a Pulumi mock (pulumi.WithMocks) that records every resource and answers
// like the providers.
type Recorder struct {
	mu        sync.Mutex
	resources []Registered
}

func (r *Recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := Registered{Type: args.TypeToken, Name: args.Name, Inputs: args.Inputs}
	if rpc := args.RegisterRPC; rpc != nil {
		reg.Deps = rpc.GetDependencies()
		reg.DeleteBeforeReplace = rpc.GetDeleteBeforeReplace()
		reg.DeleteBeforeReplaceSet = rpc.GetDeleteBeforeReplaceDefined()
		reg.IgnoreChanges = rpc.GetIgnoreChanges()
		for _, a := range rpc.GetAliases() {
			if name := a.GetSpec().GetName(); name != "" { // not a provider SDK's type alias
				reg.Aliases = append(reg.Aliases, name)
			}
		}
	}
	r.resources = append(r.resources, reg)

	state := args.Inputs.Copy()
	switch args.TypeToken {
	case TypeImage:
		state["repoDigest"] = resource.NewProperty(MockImageID)
	case TypeRegistryImage:
		state["sha256Digest"] = resource.NewProperty(MockDigest)
	case TypeCommand:
		state["stdout"] = resource.NewProperty(MockStdout)
		if argv := args.Inputs["interpreter"]; argv.IsArray() && len(argv.ArrayValue()) > 1 && argv.ArrayValue()[1].StringValue() == subcommand.PublishIndexName {
			state["stdout"] = resource.NewProperty(MockIndexDigest) // what the index mode prints
		}
	}
	return MockID(args.TypeToken, args.Name), state, nil
}

func (r *Recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

// MockID is the ID the mock gives a resource: its type in it, so a test can tell which
// resource an input refers to.
func MockID(typeToken, name string) string {
	return typeToken[strings.LastIndex(typeToken, ":")+1:] + "/" + name
}

// All is every resource registered so far.
func (r *Recorder) All() []Registered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Registered(nil), r.resources...)
}

// ByType is the resources of one type.
func (r *Recorder) ByType(typ string) []Registered {
	var out []Registered
	for _, res := range r.All() {
		if res.Type == typ {
			out = append(out, res)
		}
	}
	return out
}

// Named is the resource of that name, or a fatal error.
func (r *Recorder) Named(t testing.TB, name string) Registered {
	t.Helper()
	for _, res := range r.All() {
		if res.Name == name {
			return res
		}
	}
	t.Fatalf("no resource named %s", name)
	return Registered{}
}

// One is the one resource of typ, or a fatal error.
func (r *Recorder) One(t testing.TB, typ string) Registered {
	t.Helper()
	found := r.ByType(typ)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(found))
	}
	return found[0]
}

// At is the value at a property path ("taskSpec.mounts[0].type") of pm; secrets stay wrapped.
func At(t testing.TB, pm resource.PropertyMap, path string) resource.PropertyValue {
	t.Helper()
	parsed, err := resource.ParsePropertyPath(path)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := parsed.Get(resource.NewObjectProperty(pm))
	if !ok {
		t.Fatalf("no value at %s", path)
	}
	return v
}

// Plain is the value at a property path of pm ("build.args.BASE_IMAGE", `tmpfs["/tmp"]`)
// as fmt prints it, a secret's value unwrapped.
func Plain(t testing.TB, pm resource.PropertyMap, path string) string {
	t.Helper()
	v := At(t, pm, path)
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return fmt.Sprint(v.Mappable())
}

// StringList is the string array at key of pm.
func StringList(pm resource.PropertyMap, key string) []string {
	var out []string
	for _, e := range pm[resource.PropertyKey(key)].ArrayValue() {
		out = append(out, e.StringValue())
	}
	return out
}

// DependsOn reports whether one of the URNs ends its type with typeSuffix, or its name
// with a name given instead ("site-rollout").
func DependsOn(deps []string, typeSuffix string) bool {
	for _, urn := range deps {
		if strings.Contains(urn, typeSuffix+"::") || strings.HasSuffix(urn, "::"+typeSuffix) {
			return true
		}
	}
	return false
}
