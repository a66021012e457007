"""A real Kubernetes control plane for the integration tests, without Docker.

`controlplane` starts etcd, kube-apiserver and kube-controller-manager built
by `scripts/build-control-plane.sh`; `node_agent` stands in for kube-scheduler
and kubelet by running pods' commands as local processes. The fixtures that
tests use live in `tests/integration/conftest.py`.
"""
