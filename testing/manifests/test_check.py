"""Negative self-tests of check.py: each test breaks a copy of the manifests, spin.toml
or kubernetes/README.md in one way and asserts that check.py reports it.

Run from the repository root:  python3 -m unittest discover -s testing/manifests -v
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check  # noqa: E402

REPO = check.REPO_DEFAULT
SCHEMAS = check.default_schema_dir(REPO)
V2 = "kubernetes/client1-v2.yaml"
V3 = "kubernetes/client1-v3.yaml"
AUTO = "kubernetes/client1-v3-autoscaling.yaml"
KIND = "runtime-class/kind-cluster.yaml"
EXECUTOR = "runtime-class/spin-app-executor.yaml"
README = check.README


class CheckTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        shutil.copy(REPO / "spin.toml", self.root / "spin.toml")
        for d in check.MANIFEST_DIRS:
            shutil.copytree(REPO / d, self.root / d)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    # helpers ---------------------------------------------------------------------

    def edit(self, rel: str, old: str, new: str, count: int = 1) -> None:
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"test setup: {old!r} not in {rel} (did the file change?)")
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    def failures(self) -> list[str]:
        report, _ = check.run_checks(self.root, SCHEMAS)
        return report.failed

    def assertCaught(self, *fragments: str) -> list[str]:
        failed = self.failures()
        for frag in fragments:
            self.assertTrue(any(frag in f for f in failed),
                            f"expected a failure containing {frag!r}; failures were:\n  " + "\n  ".join(failed))
        return failed


class Baseline(CheckTestCase):
    def test_repository_passes(self) -> None:
        self.assertEqual(self.failures(), [])

    def test_schema_directory_is_required(self) -> None:
        with self.assertRaises(check.SetupError):
            check.run_checks(self.root, self.root / "no-such-dir")


class UnknownFields(CheckTestCase):
    def test_unknown_field_in_spinapp_spec(self) -> None:
        self.edit(V2, "  replicas: 1\n", "  replicas: 1\n  replica: 2\n")
        self.assertCaught(f"{V2}#0 SpinApp/client1: validates", "'replica' was unexpected")

    def test_unknown_field_deep_in_spinapp(self) -> None:
        self.edit(V3, "        path: /readyz\n", "        path: /readyz\n        port: 80\n")
        self.assertCaught("checks.readiness.httpGet", "'port' was unexpected")

    def test_unknown_field_in_runtime_config_option(self) -> None:
        self.edit(V3, "                key: redis_url\n", "                key: redis_url\n                optinal: true\n")
        self.assertCaught("runtimeConfig.keyValueStores[0].options[0].valueFrom.secretKeyRef", "'optinal'")

    def test_unknown_field_in_executor(self) -> None:
        self.edit(EXECUTOR, "installDefaultCACerts: true", "installDefaultCACert: true")
        self.assertCaught("SpinAppExecutor/containerd-shim-spin: validates", "'installDefaultCACert' was unexpected")

    def test_unknown_field_in_spinapp_metadata(self) -> None:
        self.edit(V2, "  name: client1\n", "  name: client1\n  lables:\n    a: b\n")
        self.assertCaught("'lables' was unexpected")

    def test_unknown_field_in_builtin_kind(self) -> None:
        self.edit(V3, "          image: redis:", "          imagePullPolicyy: IfNotPresent\n          image: redis:")
        self.assertCaught("Deployment/session-store: validates against Kubernetes", "'imagePullPolicyy' was unexpected")

    def test_wrong_type(self) -> None:
        self.edit(V2, "  replicas: 1\n", "  replicas: one\n")
        self.assertCaught("replicas: 'one' is not of type 'integer'")

    def test_unknown_kind(self) -> None:
        self.edit(EXECUTOR, "kind: SpinAppExecutor", "kind: SpinAppExecuter")
        self.assertCaught("no CRD schema for core.spinkube.dev/v1alpha1 SpinAppExecuter")

    def test_duplicate_yaml_key(self) -> None:
        self.edit(V2, "  replicas: 1\n", "  replicas: 1\n  replicas: 4\n")
        self.assertCaught(f"{V2}: YAML does not parse", "duplicate key 'replicas'")


class Names(CheckTestCase):
    def test_wrong_executor_name(self) -> None:
        self.edit(V2, "executor: containerd-shim-spin", "executor: containerd-shim-spinn")
        self.assertCaught("executor 'containerd-shim-spinn' is a defined SpinAppExecutor")

    def test_wrong_runtime_class_name(self) -> None:
        self.edit(EXECUTOR, "runtimeClassName: wasmtime-spin-v2", "runtimeClassName: wasmtime-spin")
        self.assertCaught("runtimeClassName 'wasmtime-spin' is a defined RuntimeClass")

    def test_missing_ca_certs(self) -> None:
        self.edit(EXECUTOR, "installDefaultCACerts: true", "installDefaultCACerts: false")
        self.assertCaught("pods get a CA bundle")


class Variables(CheckTestCase):
    def test_missing_required_variable(self) -> None:
        self.edit(V3, "    - name: oidc_issuer_url\n      valueFrom:\n        configMapKeyRef:\n"
                      "          name: client1\n          key: oidc_issuer_url\n", "")
        self.assertCaught(f"{V3}#0 SpinApp/client1: sets every required spin.toml variable", "missing: oidc_issuer_url")

    def test_variable_required_in_spin_toml_but_not_set(self) -> None:
        self.edit("spin.toml", 'client_title = { default = "Confidential Client" }', "client_title = { required = true }")
        self.assertCaught("missing: client_title")

    def test_variable_not_declared_in_spin_toml(self) -> None:
        self.edit(V2, "    - name: pod_name\n", "    - name: client_titel\n      value: x\n    - name: pod_name\n")
        self.assertCaught("not declared: client_titel")

    def test_secret_variable_from_configmap(self) -> None:
        self.edit(V2, "    - name: client_secret\n      valueFrom:\n        secretKeyRef:",
                  "    - name: client_secret\n      valueFrom:\n        configMapKeyRef:")
        self.assertCaught("secret variable client_secret comes from a Secret")


class Keys(CheckTestCase):
    def test_misspelled_configmap_key_in_spinapp(self) -> None:
        self.edit(V2, "key: client_base_url", "key: client_base_ur1")
        self.assertCaught("reads ConfigMap client1/client_base_ur1", "not 'client_base_ur1'")

    def test_misspelled_configmap_key_in_readme(self) -> None:
        self.edit(README, "--from-literal=client_base_url=", "--from-literal=client_base_ur1=")
        self.assertCaught("not 'client_base_url'", "ConfigMap client1/client_base_ur1 is read by a SpinApp or Deployment")

    def test_misspelled_secret_key_in_readme(self) -> None:
        self.edit(README, "--from-literal=redis_url=", "--from-literal=redis_ur1=")
        self.assertCaught("not 'redis_url'", "Secret session-store/redis_ur1 is read by a SpinApp or Deployment")

    def test_redis_password_key_not_created(self) -> None:
        self.edit(README, "--from-literal=password=", "--from-literal=pasword=")
        self.assertCaught("Deployment/session-store: container redis env REDISCLI_AUTH reads Secret session-store/password")

    def test_misspelled_secret_name(self) -> None:
        self.edit(V3, "        secretKeyRef:\n          name: client1\n", "        secretKeyRef:\n          name: client-1\n")
        self.assertCaught("reads Secret 'client-1', which no `kubectl create secret generic client-1`")

    def test_redis_url_points_nowhere(self) -> None:
        self.edit(README, "@session-store:6379", "@sessions:6379")
        self.assertCaught("points at a defined Service and port")


class Stores(CheckTestCase):
    def test_store_not_default(self) -> None:
        self.edit(V3, "      - name: default\n        type: redis", "      - name: sessions\n        type: redis")
        self.assertCaught("configures the store 'default'", "store 'sessions' is in spin.toml key_value_stores")

    def test_store_missing_from_spin_toml(self) -> None:
        self.edit("spin.toml", 'key_value_stores = ["default"]', 'key_value_stores = ["other"]')
        self.assertCaught("store 'default' is in spin.toml key_value_stores")

    def test_v2_with_runtime_config(self) -> None:
        v3 = (self.root / V3).read_text(encoding="utf-8")
        block = v3[v3.index("  runtimeConfig:"):v3.index("---")]
        self.edit(V2, "      memory: 256Mi\n", "      memory: 256Mi\n" + block)
        self.assertCaught("no runtimeConfig (a store per pod)")


class StoreOutage(CheckTestCase):
    """Sessions survive a Redis restart, and the probes work with Spin's waiting requests."""

    def test_redis_without_aof(self) -> None:
        self.edit(V3, '"--appendonly", "yes"', '"--appendonly", "no"')
        self.assertCaught("redis-server runs with --appendonly yes (AOF)")

    def test_redis_data_on_an_emptydir(self) -> None:
        self.edit(V3, "          persistentVolumeClaim:\n            claimName: session-store-data\n",
                  "          emptyDir: {}\n")
        self.assertCaught("the data directory /data is a PersistentVolumeClaim defined in the manifests")

    def test_redis_data_claim_not_defined(self) -> None:
        self.edit(V3, "            claimName: session-store-data\n", "            claimName: redis-data\n")
        self.assertCaught("the data directory /data is a PersistentVolumeClaim defined in the manifests")

    def test_redis_data_dir_not_mounted(self) -> None:
        self.edit(V3, "              mountPath: /data\n", "              mountPath: /var/lib/redis\n")
        self.assertCaught("the data directory /data is a PersistentVolumeClaim defined in the manifests")

    def test_redis_rolling_update(self) -> None:
        self.edit(V3, "    type: Recreate\n", "    type: RollingUpdate\n")
        self.assertCaught("strategy Recreate")

    def test_readiness_probe_without_timeout(self) -> None:
        for f in (V2, V3):
            self.edit(f, "      periodSeconds: 5\n      timeoutSeconds: 2\n", "      periodSeconds: 5\n")
        self.assertCaught("readiness probe has an explicit timeoutSeconds shorter than its period")


class RedisPassword(CheckTestCase):
    """Redis requires a password from the Secret session-store, and the store url the
    SpinApps read from that Secret carries the same password."""

    def test_no_requirepass(self) -> None:
        self.edit(V3, '"--save", "",\n                 "--requirepass", "$(REDISCLI_AUTH)"]', '"--save", ""]')
        self.assertCaught("redis-server requires a password (--requirepass)")

    def test_literal_password_in_manifest(self) -> None:
        self.edit(V3, '"$(REDISCLI_AUTH)"', '"hunter2"')
        self.assertCaught("--requirepass is an environment variable", "'hunter2'")

    def test_password_env_not_from_secret(self) -> None:
        self.edit(V3, "              valueFrom:\n                secretKeyRef:\n                  name: session-store\n"
                      "                  key: password\n", "              value: hunter2\n")
        self.assertCaught("REDISCLI_AUTH comes from a Secret (secretKeyRef)")

    def test_store_url_from_configmap(self) -> None:
        for f in (V3, AUTO):
            self.edit(f, "              secretKeyRef:\n                name: session-store\n                key: redis_url",
                      "              configMapKeyRef:\n                name: client1\n                key: redis_url")
        self.assertCaught("url comes from a Secret (it holds the Redis password)")

    def test_url_password_differs(self) -> None:
        self.edit(README, "redis://:$REDIS_PASSWORD@", "redis://:$REDIS_PASS@")
        self.assertCaught("Secret session-store/redis_url carries the password Redis requires",
                          "'$REDIS_PASS'", "'$REDIS_PASSWORD'")

    def test_url_without_password(self) -> None:
        self.edit(README, "redis://:$REDIS_PASSWORD@", "redis://")
        self.assertCaught("carries the password Redis requires", "the url has password None")


class Autoscaling(CheckTestCase):
    """The HPA scales the operator's Deployment of an autoscaling SpinApp in its file."""

    def test_replicas_with_autoscaling(self) -> None:
        self.edit(AUTO, "  enableAutoscaling: true\n", "  enableAutoscaling: true\n  replicas: 2\n")
        self.assertCaught(f"{AUTO}#0 SpinApp/client1: enableAutoscaling without replicas", "replicas: 2")

    def test_no_cpu_request(self) -> None:
        self.edit(AUTO, "    requests:\n      cpu: 100m\n", "    requests:\n")
        self.assertCaught("resources.requests.cpu is set")

    def test_autoscaling_not_enabled(self) -> None:
        self.edit(AUTO, "  enableAutoscaling: true\n", "  enableAutoscaling: false\n")
        self.assertCaught("HorizontalPodAutoscaler/client1: SpinApp client1 has enableAutoscaling: true")

    def test_hpa_targets_another_deployment(self) -> None:
        self.edit(AUTO, "    kind: Deployment\n    name: client1\n", "    kind: Deployment\n    name: session-store\n")
        self.assertCaught("HorizontalPodAutoscaler/client1: targets the Deployment of a SpinApp",
                          "no SpinApp 'session-store'", "SpinApp/client1: an HPA in")

    def test_hpa_targets_the_spinapp(self) -> None:
        self.edit(AUTO, "    apiVersion: apps/v1\n    kind: Deployment\n",
                  "    apiVersion: core.spinkube.dev/v1alpha1\n    kind: SpinApp\n")
        self.assertCaught("HorizontalPodAutoscaler/client1: scales a Deployment (apps/v1)")

    def test_no_hpa(self) -> None:
        text = (self.root / AUTO).read_text(encoding="utf-8")
        (self.root / AUTO).write_text(text[:text.index("---")], encoding="utf-8")
        self.assertCaught(f"{AUTO}#0 SpinApp/client1: an HPA in {AUTO} scales its Deployment")

    def test_hpa_not_on_cpu(self) -> None:
        self.edit(AUTO, "        name: cpu\n", "        name: memory\n")
        self.assertCaught("scales on CPU")

    def test_min_above_max(self) -> None:
        self.edit(AUTO, "  minReplicas: 2\n", "  minReplicas: 9\n")
        self.assertCaught("1 <= minReplicas <= maxReplicas", "minReplicas 9, maxReplicas 8")

    def test_unknown_field_in_hpa(self) -> None:
        self.edit(AUTO, "  maxReplicas: 8\n", "  maxReplicas: 8\n  maxReplica: 8\n")
        self.assertCaught("HorizontalPodAutoscaler/client1: validates against Kubernetes", "'maxReplica' was unexpected")

    def test_variant_differs_from_v3(self) -> None:
        self.edit(AUTO, "      timeoutSeconds: 2\n      failureThreshold: 2\n", "      timeoutSeconds: 1\n      failureThreshold: 2\n")
        self.assertCaught("SpinApp equals client1-v3's apart from replicas and enableAutoscaling")

    def test_readme_does_not_apply_variant(self) -> None:
        self.edit(README, 'sed "s|ghcr.io/YOUR-ORG/|$REGISTRY/|" kubernetes/client1-v3-autoscaling.yaml | kubectl apply -f -',
                  "kubectl get hpa")
        self.assertCaught("applies every SpinApp manifest", "client1-v3-autoscaling.yaml")


class ShimAndCluster(CheckTestCase):
    """The node images in the README, its shim table, and the kind cluster config."""

    def test_kind_runtime_not_the_runtime_class_handler(self) -> None:
        self.edit(KIND, "containerd.runtimes.spin]", "containerd.runtimes.wasm]")
        self.edit(KIND, "containerd.runtimes.spin.options]", "containerd.runtimes.wasm.options]")
        self.assertCaught("containerd runtime 'spin' (the RuntimeClass handler) is io.containerd.spin.v2")

    def test_kind_unknown_field(self) -> None:
        self.edit(KIND, "extraPortMappings:", "extraPortMapping:")
        self.assertCaught(f"{KIND}#0 Cluster/?: validates against kind", "'extraPortMapping' was unexpected")

    def test_kind_port_not_base_url(self) -> None:
        self.edit(KIND, "hostPort: 8081", "hostPort: 8080")
        self.assertCaught("publishes port 80 (the ingress) on 8081")

    def test_kind_patch_not_toml(self) -> None:
        self.edit(KIND, 'runtime_type = "io.containerd.spin.v2"', "runtime_type = io.containerd.spin.v2")
        self.assertCaught("containerdConfigPatches[0] is not TOML")

    def test_wrong_node_image_for_tool(self) -> None:
        self.edit(README, "--image ghcr.io/spinframework/containerd-shim-spin/k3d:v0.24.0",
                  "--image ghcr.io/spinframework/containerd-shim-spin/kind:v0.24.0")
        self.assertCaught("uses the containerd-shim-spin k3d node image")

    def test_shim_row_missing(self) -> None:
        self.edit(README, "| `v0.25.0` | Spin 4.0.1 | `ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.0` | kind |\n", "")
        self.assertCaught("the shim table has a row for ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.0")

    def test_shim_row_without_spin_version(self) -> None:
        self.edit(README, "| `v0.24.0` | Spin 3.6.3 |", "| `v0.24.0` | 3.6 |")
        self.assertCaught("the shim table has a row for ghcr.io/spinframework/containerd-shim-spin/k3d:v0.24.0")

    def test_table_image_unused(self) -> None:
        self.edit(README, "--image ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.0",
                  "--image ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.1")
        self.assertCaught("node image ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.0 in the shim table is used",
                          "the shim table has a row for ghcr.io/spinframework/containerd-shim-spin/kind:v0.25.1")


class Image(CheckTestCase):
    def test_spinapps_disagree(self) -> None:
        self.edit(V3, "image: ghcr.io/YOUR-ORG/oidc-client:0.1.0", "image: ghcr.io/YOUR-ORG/oidc-client:0.1.1")
        self.assertCaught("all SpinApps use the same image reference")

    def test_push_differs_from_manifests(self) -> None:
        self.edit(README, "spin registry push $REGISTRY/oidc-client:0.1.0", "spin registry push $REGISTRY/oidc:0.1.0")
        self.assertCaught("is applied with the pushed image", "`spin kube scaffold --from` uses the pushed reference")

    def test_registry_default_differs_from_placeholder(self) -> None:
        self.edit(README, "export REGISTRY=ghcr.io/YOUR-ORG", "export REGISTRY=ghcr.io/someone")
        # push and sed agree with each other, so this is fine ...
        self.assertEqual(self.failures(), [])
        # ... but not when sed no longer matches the manifests' registry part.
        self.edit(README, 's|ghcr.io/YOUR-ORG/|$REGISTRY/|', 's|ghcr.io/YOUR_ORG/|$REGISTRY/|', count=2)
        self.assertCaught("rewrites part of spec.image")


class ReadmeCommands(CheckTestCase):
    def test_missing_file(self) -> None:
        self.edit(README, "kubectl apply -f kubernetes/client1-ingress.yaml", "kubectl apply -f kubernetes/ingress.yaml")
        self.assertCaught("-f kubernetes/ingress.yaml exists")

    def test_manifest_never_used(self) -> None:
        self.edit(README, "kubectl apply -f kubernetes/client1-ingress.yaml", "kubectl get ingress client1")
        self.edit(README, "kubectl delete -f kubernetes/client1-ingress.yaml", "kubectl delete ingress client1")
        self.assertCaught("uses kubernetes/client1-ingress.yaml")

    def test_unknown_resource_name(self) -> None:
        self.edit(README, "kubectl get spinapp client1", "kubectl get spinapp client2")
        self.assertCaught("SpinApp client2 is defined")

    def test_unknown_service(self) -> None:
        self.edit(README, "kubectl port-forward svc/client1 8080:80\n", "kubectl port-forward svc/client-1 8080:80\n")
        self.assertCaught("Service client-1 is defined")

    def test_kubectl_scale_spinapp(self) -> None:
        self.edit(README, "kubectl patch spinapp client1 --type merge -p '{\"spec\":{\"replicas\":4}}'",
                  "kubectl scale spinapp client1 --replicas=4")
        self.assertCaught("no scale subresource")

    def test_bad_patch(self) -> None:
        self.edit(README, "-p '{\"spec\":{\"replicas\":4}}'", "-p '{\"spec\":{\"replica\":4}}'")
        self.assertCaught("still validates", "'replica' was unexpected")

    def test_unknown_label(self) -> None:
        self.edit(README, "kubectl delete pod -l app=session-store", "kubectl delete pod -l app=redis")
        self.assertCaught("label app=redis is set on a defined object")

    def test_foreign_namespace(self) -> None:
        self.edit(README, "kubectl get spinapp client1", "kubectl get spinapp client1 -n demo")
        self.assertCaught("addresses namespace demo")


class EmitRuntimeConfig(CheckTestCase):
    def run_main(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = check.main(["--repo", str(self.root), "--schemas", str(SCHEMAS), *args])
        return code, out.getvalue()

    def test_emits_operator_shape_with_redis_url(self) -> None:
        target = self.root / "out" / "runtime-config.toml"
        code, out = self.run_main("--emit-runtime-config", str(target), "--redis-url", "redis://127.0.0.1:16379/0")
        self.assertEqual(code, 0, out)
        self.assertEqual(tomllib.loads(target.read_text(encoding="utf-8")), {
            "config_provider": [{"type": "env", "prefix": "SPIN_VARIABLE_"}],
            "key_value_store": {"default": {"type": "redis", "url": "redis://127.0.0.1:16379/0"}},
        })

    def test_default_url_needs_the_password(self) -> None:
        # The README's url holds $REDIS_PASSWORD, known only at run time: without
        # --redis-url there is nothing to write.
        target = self.root / "rc.toml"
        code, out = self.run_main("--emit-runtime-config", str(target))
        self.assertEqual(code, 2, out)
        self.assertIn("--redis-url", out)
        self.assertFalse(target.exists())

    def test_renders_v3_not_a_config_of_its_own(self) -> None:
        # v3 and the autoscaling variant share one runtime config; if they differ,
        # there is no single file the operator would render.
        self.edit(AUTO, "          - name: url\n", "          - name: url\n            value: redis://other:6379\n"
                  "          - name: unused\n", count=1)
        report, model = check.run_checks(self.root, SCHEMAS)
        self.assertTrue(report.failed)
        with self.assertRaises(check.SetupError):
            check.render_runtime_config(model, "redis://127.0.0.1:6379")

    def test_url_is_escaped(self) -> None:
        target = self.root / "rc.toml"
        url = 'redis://u:p"a\\ss@127.0.0.1:6379'
        code, out = self.run_main("--emit-runtime-config", str(target), "--redis-url", url)
        self.assertEqual(code, 0, out)
        self.assertEqual(tomllib.loads(target.read_text(encoding="utf-8"))["key_value_store"]["default"]["url"], url)

    def test_nothing_written_and_exit_1_when_checks_fail(self) -> None:
        self.edit(V2, "executor: containerd-shim-spin", "executor: nope")
        target = self.root / "rc.toml"
        code, out = self.run_main("--emit-runtime-config", str(target))
        self.assertEqual(code, 1, out)
        self.assertFalse(target.exists())
        self.assertIn("FAIL", out)


if __name__ == "__main__":
    unittest.main()
