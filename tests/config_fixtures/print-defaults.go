// Regenerates upstream-1.20-defaults.yaml: build in GOPATH mode inside a v1.20.2 tree (as
// scripts/upstream-k8s/setup.sh does), e.g. as k8s.io/kubernetes/cmd/pkdefaults, then run it.
package main

import (
	"os"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	defaults "k8s.io/kubernetes/pkg/kubelet/apis/config/v1beta1"
	"sigs.k8s.io/yaml"
)

func main() {
	c := &kubeletconfigv1beta1.KubeletConfiguration{}
	defaults.SetDefaults_KubeletConfiguration(c)
	c.APIVersion = "kubelet.config.k8s.io/v1beta1"
	c.Kind = "KubeletConfiguration"
	b, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(b)
}
