package pulumimock

import "github.com/example/custom-nginx/internal/site"

// Resource types of the stack, as the Pulumi engine names them: one place for the mock
// tests, the acceptance tests and the benchmark.
const (
	TypeSite          = site.Type
	TypeImage         = "docker:index/image:Image"
	TypeRegistryImage = "docker:index/registryImage:RegistryImage"
	TypeContainer     = "docker:index/container:Container"
	TypeVolume        = "docker:index/volume:Volume"
	TypeService       = "docker:index/service:Service"
	TypeCommand       = "command:local:Command"
)
