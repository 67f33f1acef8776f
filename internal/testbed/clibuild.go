package testbed

import "context"

// ImageIDs is the set of the engine's image IDs, intermediate ones included: taken before a
// build that the docker CLI runs, it is what RemoveBuildSteps spares.
func (e *Engine) ImageIDs(ctx context.Context) (map[string]bool, error) {
	return e.imageIDs(ctx)
}

// RemoveBuildSteps removes what a classic build of the docker CLI (DOCKER_BUILDKIT=0) left
// beside its result, as BuildApp does for its own builds: the images of the steps output
// names that were not in before, except keep (the build's image ID) and its ancestors. A
// multi-stage build leaves its earlier stages' images untagged; the engine holds them until
// someone removes them by ID. Only the images the output names go, so a build elsewhere on
// the same engine at the same time keeps its own.
func (e *Engine) RemoveBuildSteps(ctx context.Context, output string, before map[string]bool, keep string) {
	var out buildOutput
	out.WriteString(output)
	e.removeStepImages(ctx, out.steps(), before, keep)
}
