package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/example/custom-nginx/internal/pulumimock"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// Workspace is a copy of the Pulumi project with a file backend of its own, as a user
// without a Pulumi account has it: the acceptance tests and the benchmark edit its page and
// keep its stacks' state there, never in the repository or the developer's backend.
type Workspace struct {
	Dir     string // the project copy
	Backend string // the file backend's directory
	// Env is what every Pulumi command of the workspace runs with, over the process's
	// environment: it pins what the runs depend on, so the developer's settings do not leak in.
	Env map[string]string
}

// NewWorkspace copies the project at root into dir/project, with a file backend in
// dir/backend, stacks encrypted with passphrase, and the docker provider pointed at
// dockerHost (a DOCKER_HOST value; "" for the local engine, whatever DOCKER_HOST says).
func NewWorkspace(root, dir, passphrase, dockerHost string) (*Workspace, error) {
	w := &Workspace{Dir: filepath.Join(dir, "project"), Backend: filepath.Join(dir, "backend")}
	if err := CopyProject(root, w.Dir); err != nil {
		return nil, err
	}
	dockerConfig := filepath.Join(dir, "docker-config")
	for _, d := range []string{w.Backend, dockerConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	w.Env = map[string]string{
		"PULUMI_BACKEND_URL":       "file://" + w.Backend,
		"PULUMI_CONFIG_PASSPHRASE": passphrase,
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		// StackResources reads the checkpoint as plain JSON.
		"PULUMI_SELF_MANAGED_STATE_GZIP": "false",
		"DOCKER_HOST":                    dockerHost,
		// No credential helper or login of the developer's: the stack sends its own.
		"DOCKER_CONFIG": dockerConfig,
	}
	return w, nil
}

// Page is the custom page of the workspace's app.
func (w *Workspace) Page() string { return filepath.Join(w.Dir, "app", "html", "index.html") }

// Stack is a stack of a Workspace that knows which images its `up`s built, and removes
// them with the stack: the docker provider never removes a local image, not even on destroy.
type Stack struct {
	auto.Stack
	Name    string
	ws      *Workspace
	engine  *Engine         // where the builds land; nil: none are removed
	before  map[string]bool // image IDs, tags and digests the engine held before the stack existed
	mu      sync.Mutex
	builtBy map[string]bool // image IDs, names and digests its Image and RegistryImage resources have had
}

// NewStack creates (or selects) the stack name with cfg. engine is the engine the stack
// builds on (nil when it builds nothing, as with bad config); Remove removes what it built
// there. opts go to the stack's workspace (e.g. auto.Pulumi: another CLI). On error nothing
// of the stack is left.
func (w *Workspace) NewStack(ctx context.Context, name string, cfg auto.ConfigMap, engine *Engine, opts ...auto.LocalWorkspaceOption) (*Stack, error) {
	s := &Stack{Name: name, ws: w, engine: engine, builtBy: map[string]bool{}}
	if engine != nil {
		refs, err := engine.imageRefs(ctx)
		if err != nil {
			return nil, err
		}
		s.before = refs
	}
	stack, err := auto.UpsertStackLocalSource(ctx, name, w.Dir, append([]auto.LocalWorkspaceOption{auto.EnvVars(w.Env), auto.SecretsProvider("passphrase")}, opts...)...)
	if err != nil {
		return nil, err
	}
	s.Stack = stack
	if err := s.SetAllConfig(ctx, cfg); err != nil {
		return nil, errors.Join(err, s.Remove(ctx))
	}
	return s, nil
}

// Up runs `pulumi up` and records the images it built, also when it failed: a failed push
// leaves a new build behind.
func (s *Stack) Up(ctx context.Context, opts ...optup.Option) (auto.UpResult, error) {
	res, err := s.Stack.Up(ctx, opts...)
	if recordErr := s.RecordImages(); err == nil {
		err = recordErr
	}
	return res, err
}

// Remove destroys the stack, removes it from the backend and removes every image its
// `up`s built, by ID; of an image the engine held before the stack existed, only the tags
// and digests the stack added.
func (s *Stack) Remove(ctx context.Context) error {
	var errs []error
	if _, err := s.Destroy(ctx); err != nil {
		errs = append(errs, fmt.Errorf("destroy of stack %s: %w", s.Name, err))
	}
	if err := s.Workspace().RemoveStack(ctx, s.Name); err != nil {
		errs = append(errs, fmt.Errorf("removing stack %s: %w", s.Name, err))
	}
	return errors.Join(append(errs, s.removeImages(ctx))...)
}

// StatePath is where the file backend keeps the stack's checkpoint.
func (s *Stack) StatePath() (string, error) {
	project, err := s.Workspace().ProjectSettings(context.Background())
	if err != nil {
		return "", err
	}
	return filepath.Join(s.ws.Backend, ".pulumi", "stacks", string(project.Name), s.Name+".json"), nil
}

// StackResources reads what the file backend stores for the stack: the resources of its
// checkpoint, secrets as the backend keeps them (Export would decrypt them).
func (s *Stack) StackResources() ([]apitype.ResourceV3, error) {
	path, err := s.StatePath()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // nothing deployed yet
	}
	if err != nil {
		return nil, err
	}
	var checkpoint apitype.VersionedCheckpoint
	if err := json.Unmarshal(raw, &checkpoint); err != nil {
		return nil, err
	}
	var cp apitype.CheckpointV3
	if err := json.Unmarshal(checkpoint.Checkpoint, &cp); err != nil {
		return nil, err
	}
	if cp.Latest == nil {
		return nil, nil
	}
	return cp.Latest.Resources, nil
}

// HasType reports whether resources hold one of the resource type typ.
func HasType(resources []apitype.ResourceV3, typ string) bool {
	return slices.ContainsFunc(resources, func(r apitype.ResourceV3) bool { return string(r.Type) == typ })
}

// RecordImages notes every reference the stack's state gives to an image it built: the
// ID (with skipPush the Image's repoDigest) and name of each Image, and the repository
// digest each RegistryImage's push left on it. Up calls it; an up the stack did not run
// itself (make up's) calls it after.
func (s *Stack) RecordImages() error {
	resources, err := s.StackResources()
	if err != nil {
		return fmt.Errorf("reading the images stack %s built: %w", s.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range resources {
		out := func(key string) string { v, _ := r.Outputs[key].(string); return v }
		switch string(r.Type) {
		case pulumimock.TypeImage:
			s.builtBy[out("repoDigest")] = true
			s.builtBy[out("imageName")] = true
		case pulumimock.TypeRegistryImage:
			if name, digest := out("name"), out("sha256Digest"); name != "" && digest != "" {
				s.builtBy[withoutTag(name)+"@"+digest] = true
			}
		}
	}
	delete(s.builtBy, "")
	return nil
}

// withoutTag is name (host:port/repository:tag) without its tag.
func withoutTag(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[:i]
	}
	return name
}

// removeImages removes, with force, every image the stack recorded that the engine did not
// hold before the stack: its builds, tagged or superseded by a later build. An image the
// engine held before loses only the tags and digests the stack added.
func (s *Stack) removeImages(ctx context.Context) error {
	if s.engine == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for ref := range s.builtBy {
		inspect, err := s.engine.ImageInspect(ctx, ref)
		if client.IsErrNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if s.before[inspect.ID] {
			// An identical build another stack made first: take back only the stack's own tag
			// or digest, which leaves the image while it has another.
			if !s.before[ref] && ref != inspect.ID && len(inspect.RepoTags)+len(inspect.RepoDigests) > 1 {
				_, _ = s.engine.ImageRemove(ctx, ref, image.RemoveOptions{})
			}
			continue
		}
		_, err = s.engine.ImageRemove(ctx, inspect.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("removing image %s (%s) that stack %s built: %w", ref, inspect.ID, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// imageRefs is the set of the engine's image IDs (intermediate ones included), tags and
// repository digests.
func (e *Engine) imageRefs(ctx context.Context) (map[string]bool, error) {
	list, err := e.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	refs := map[string]bool{}
	for _, img := range list {
		refs[img.ID] = true
		for _, ref := range append(img.RepoTags, img.RepoDigests...) {
			refs[ref] = true
		}
	}
	return refs, nil
}

// imageIDs is the set of the engine's image IDs, intermediate ones included.
func (e *Engine) imageIDs(ctx context.Context) (map[string]bool, error) {
	refs, err := e.imageRefs(ctx)
	if err != nil {
		return nil, err
	}
	maps.DeleteFunc(refs, func(ref string, _ bool) bool { return !strings.HasPrefix(ref, "sha256:") })
	return refs, nil
}

// PushingTo is the config of a stack that builds app/ on base, pushes it to repository on
// reg and publishes it on hostPort: what every real stack of the tests and the benchmark
// sets, before keys of its own.
func PushingTo(reg *Registry, repository string, hostPort int, base string) auto.ConfigMap {
	return auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: reg.Password, Secret: true},
		"repository":       {Value: repository},
		"hostPort":         {Value: fmt.Sprint(hostPort)},
		"baseImage":        {Value: base},
	}
}
