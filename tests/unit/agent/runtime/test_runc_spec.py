"""OCI spec generation for the runc runtime (pure): command/args merge, env, user, capabilities,
resources → cgroup values, mounts, namespaces, /etc files."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.agent.runtime.interface import Mount
from kubelite.agent.runtime.runc import etcfiles, process, resources
from kubelite.agent.runtime.runc.spec import ContainerInputs, PodContext, SpecError, build_spec, stop_signal

Obj = dict[str, Any]
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n"
GROUP = "root:x:0:\napp:x:1001:\nextra:x:2000:app,web\nwww:x:33:\n"
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
            "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
            "CAP_AUDIT_WRITE", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_TIME"]


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "web-1", "namespace": "prod", "uid": "u-1"}, "spec": {"containers": [], **spec}}


def context(p: Obj | None = None, **overrides: Any) -> PodContext:
    fields: Obj = dict(pod=p or pod(), hostname="web-1", netns_path="/var/run/netns/kl-u-1", ipc_path="/r/pods/u-1/ipc",
                       uts_path="/r/pods/u-1/uts", hosts_path="/r/pods/u-1/hosts", hostname_path="/r/pods/u-1/hostname",
                       resolv_path="/r/pods/u-1/resolv.conf", shm_path="/r/pods/u-1/shm", cgroup_parent="kubelite/u-1")
    fields.update(overrides)
    return PodContext(**fields)


def inputs(container: Obj, image: Obj | None = None, **overrides: Any) -> ContainerInputs:
    fields: Obj = dict(container={"name": "c", **container}, container_id="abc", rootfs="/r/containers/abc/rootfs",
                       image_config=image if image is not None else {"Entrypoint": ["/entry"], "Cmd": ["default"]},
                       passwd=PASSWD, group=GROUP, available_caps=ALL_CAPS)
    fields.update(overrides)
    return ContainerInputs(**fields)


# ----- command and args: the table in upstream's "Define a Command and Arguments for a Container" ---

@pytest.mark.parametrize(("command", "args", "argv"), [
    (None, None, ["/entry", "default"]),  # neither: the image's Entrypoint and Cmd
    (["/cmd"], None, ["/cmd"]),  # command only: the image's Entrypoint and Cmd are ignored
    (None, ["a1", "a2"], ["/entry", "a1", "a2"]),  # args only: the image's Entrypoint with these args
    (["/cmd"], ["a1"], ["/cmd", "a1"]),  # both: the image's are ignored
])
def test_command_args_merge(command: list[str] | None, args: list[str] | None, argv: list[str]) -> None:
    container: Obj = {}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    assert process.merge_args(container, {"Entrypoint": ["/entry"], "Cmd": ["default"]}, {}) == argv


def test_args_only_with_an_image_without_entrypoint_runs_the_args() -> None:
    assert process.merge_args({"args": ["sh", "-c", "x"]}, {"Cmd": ["default"]}, {}) == ["sh", "-c", "x"]


def test_no_command_anywhere_is_a_config_error() -> None:
    with pytest.raises(SpecError, match="no command specified"):
        process.merge_args({}, {}, {})


@pytest.mark.parametrize(("text", "expected"), [
    ("$(NAME)", "value"),
    ("pre-$(NAME)-post", "pre-value-post"),
    ("$$(NAME)", "$(NAME)"),  # escaped
    ("$(MISSING)", "$(MISSING)"),  # unknown references stay
    ("$(NAME", "$(NAME"),  # unclosed
    ("a$b", "a$b"),
    ("cost $", "cost $"),
    ("$(EMPTY)x", "x"),
])
def test_variable_expansion_as_upstream(text: str, expected: str) -> None:
    assert process.expand(text, {"NAME": "value", "EMPTY": ""}.get) == expected


def test_command_and_args_are_expanded_against_the_container_env() -> None:
    spec = build_spec(context(), inputs({"command": ["echo", "$(GREETING)"], "args": ["$(WHO)"],
                                         "env": [{"name": "GREETING", "value": "hi"}]},
                                        env=[("GREETING", "hi"), ("WHO", "you")]))
    assert spec["process"]["args"] == ["echo", "hi", "you"]


# ----- env ------------------------------------------------------------------------------------------

def test_env_order_and_override() -> None:
    env = process.merge_env(["PATH=/img/bin", "A=image", "B=image"], [("B", "container"), ("C", "c")],
                            hostname="web-1", tty=False)
    assert env == ["HOSTNAME=web-1", "PATH=/img/bin", "A=image", "B=container", "C=c"]


def test_env_gets_a_default_path_and_term_with_a_tty() -> None:
    env = process.merge_env([], [], hostname="h", tty=True)
    assert env[0].startswith("PATH=/usr/local/sbin") and "TERM=xterm" in env


def test_literal_env_values_are_the_default_env_input() -> None:
    spec = build_spec(context(), inputs({"command": ["x"]}, env=[("X", "1")]))
    assert "X=1" in spec["process"]["env"]


# ----- user -----------------------------------------------------------------------------------------

def user(container_sc: Obj | None = None, pod_sc: Obj | None = None, image_user: str = "") -> Obj:
    p = pod(securityContext=pod_sc or {})
    container = {"name": "c", "securityContext": container_sc or {}}
    return process.resolve_user(p, container, {"User": image_user}, passwd=PASSWD, group=GROUP)


def test_user_defaults_to_root() -> None:
    assert user() == {"uid": 0, "gid": 0, "additionalGids": [0]}


def test_run_as_user_takes_the_primary_group_from_passwd_and_groups_from_group() -> None:
    assert user({"runAsUser": 1000}) == {"uid": 1000, "gid": 1001, "additionalGids": [1001, 2000]}


def test_run_as_user_unknown_to_passwd_gets_gid_0() -> None:
    assert user({"runAsUser": 4242}) == {"uid": 4242, "gid": 0, "additionalGids": [0]}


def test_container_security_context_overrides_the_pod() -> None:
    got = user({"runAsUser": 33}, {"runAsUser": 1000, "runAsGroup": 5000, "supplementalGroups": [7000], "fsGroup": 8000})
    assert got == {"uid": 33, "gid": 5000, "additionalGids": [5000, 2000, 7000, 8000]}


def test_strict_supplemental_groups_policy_ignores_the_image_group_file() -> None:
    got = user({"runAsUser": 1000}, {"supplementalGroupsPolicy": "Strict", "supplementalGroups": [7000]})
    assert got == {"uid": 1000, "gid": 1001, "additionalGids": [1001, 7000]}


@pytest.mark.parametrize(("image_user", "uid", "gid"), [
    ("app", 1000, 1001), ("1000", 1000, 1001), ("app:extra", 1000, 2000), ("33:2000", 33, 2000), ("web:www", 33, 33),
])
def test_image_user_forms(image_user: str, uid: int, gid: int) -> None:
    got = user(image_user=image_user)
    assert (got["uid"], got["gid"]) == (uid, gid)


def test_unknown_image_user_name_is_a_config_error() -> None:
    with pytest.raises(SpecError, match="unable to find user nobody"):
        user(image_user="nobody")


def test_run_as_non_root_refuses_uid_0() -> None:
    with pytest.raises(SpecError, match="runAsNonRoot and image will run as root"):
        user({"runAsNonRoot": True})
    assert user({"runAsNonRoot": True}, image_user="app")["uid"] == 1000


# ----- capabilities and privileges ----------------------------------------------------------------

def test_default_capabilities_are_containerds() -> None:
    assert process.capabilities({}, available=ALL_CAPS) == list(process.DEFAULT_CAPS)


def test_capabilities_add_and_drop() -> None:
    sc = {"securityContext": {"capabilities": {"add": ["NET_ADMIN", "CAP_SYS_TIME"], "drop": ["MKNOD", "KILL"]}}}
    caps = process.capabilities(sc, available=ALL_CAPS)
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_TIME" in caps and "CAP_MKNOD" not in caps and "CAP_KILL" not in caps


def test_drop_all_then_add() -> None:
    sc = {"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}}
    assert process.capabilities(sc, available=ALL_CAPS) == ["CAP_NET_BIND_SERVICE"]


def test_privileged_gets_what_the_runtime_holds_and_no_masking() -> None:
    spec = build_spec(context(), inputs({"command": ["x"], "securityContext": {"privileged": True}}))
    assert spec["process"]["capabilities"]["bounding"] == ALL_CAPS
    assert "maskedPaths" not in spec["linux"] and spec["linux"]["resources"]["devices"] == [
        {"allow": True, "access": "rwm"}]
    sysfs = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sysfs["options"]


def test_capabilities_the_runtime_lacks_are_never_granted() -> None:
    sc = {"securityContext": {"capabilities": {"add": ["SYS_RESOURCE"]}}}
    assert "CAP_SYS_RESOURCE" not in process.capabilities(sc, available=ALL_CAPS)


def test_no_new_privileges_only_when_escalation_is_disallowed() -> None:
    assert process.no_new_privileges({"securityContext": {"allowPrivilegeEscalation": False}})
    assert not process.no_new_privileges({})


def test_read_only_root_filesystem() -> None:
    spec = build_spec(context(), inputs({"command": ["x"], "securityContext": {"readOnlyRootFilesystem": True}}))
    assert spec["root"] == {"path": "/r/containers/abc/rootfs", "readonly": True}
    hosts = next(m for m in spec["mounts"] if m["destination"] == "/etc/hosts")
    assert "ro" in hosts["options"]


# ----- resources → cgroup values --------------------------------------------------------------------

@pytest.mark.parametrize(("res", "memory", "cpu"), [
    ({}, None, {"shares": 2}),  # BestEffort: minimum shares, no quota
    ({"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"memory": "64Mi", "cpu": "500m"}},
     {"limit": 67108864, "swap": 67108864}, {"shares": 512, "quota": 50000, "period": 100000}),
    ({"requests": {"cpu": "2"}}, None, {"shares": 2048}),
    ({"requests": {"cpu": "1m"}, "limits": {"cpu": "1m"}}, None, {"shares": 2, "quota": 1000, "period": 100000}),
    ({"limits": {"memory": "1G"}}, {"limit": 1000000000, "swap": 1000000000}, {"shares": 2}),
])
def test_resources_to_cgroup_values(res: Obj, memory: Obj | None, cpu: Obj) -> None:
    out = resources.linux_resources({"resources": res}, pids_limit=None)
    assert out.get("memory") == memory and out["cpu"] == cpu and "pids" not in out


def test_pids_limit() -> None:
    assert resources.linux_resources({}, pids_limit=1024)["pids"] == {"limit": 1024}


def test_oom_score_adj_by_qos() -> None:
    guaranteed = pod(containers=[{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                             "requests": {"cpu": "1", "memory": "1Gi"}}}])
    burstable = pod(containers=[{"name": "c", "resources": {"requests": {"memory": "1Gi"}}}])
    best_effort = pod(containers=[{"name": "c"}])
    capacity = 4 * 1024**3
    assert resources.oom_score_adj(guaranteed, guaranteed["spec"]["containers"][0], memory_capacity=capacity) == -997
    assert resources.oom_score_adj(burstable, burstable["spec"]["containers"][0], memory_capacity=capacity) == 750
    assert resources.oom_score_adj(best_effort, best_effort["spec"]["containers"][0], memory_capacity=capacity) == 1000


def test_oom_score_adj_is_clamped_to_what_the_runtime_may_set() -> None:
    p = pod(containers=[{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
    spec = build_spec(context(p), inputs({"command": ["x"], **p["spec"]["containers"][0]}, memory_capacity=1 << 34,
                                         min_oom_score_adj=0))
    assert spec["process"]["oomScoreAdj"] == 0


def test_cgroups_path_is_relative_under_the_pod() -> None:
    assert build_spec(context(), inputs({"command": ["x"]}))["linux"]["cgroupsPath"] == "kubelite/u-1/abc"


# ----- namespaces and mounts -----------------------------------------------------------------------

def test_namespaces_join_the_pod_by_path() -> None:
    spec = build_spec(context(), inputs({"command": ["x"]}))
    assert spec["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "pid"}, {"type": "network", "path": "/var/run/netns/kl-u-1"},
        {"type": "ipc", "path": "/r/pods/u-1/ipc"}, {"type": "uts", "path": "/r/pods/u-1/uts"}]
    assert spec["hostname"] == "web-1"


def test_host_network_pid_and_ipc() -> None:
    p = pod(hostNetwork=True, hostPID=True, hostIPC=True)
    spec = build_spec(context(p, hostname="", netns_path=None, ipc_path=None, uts_path=None),
                      inputs({"command": ["x"]}))
    assert spec["linux"]["namespaces"] == [{"type": "mount"}] and "hostname" not in spec


def test_mounts_defaults_etc_files_and_volumes_parents_first() -> None:
    volumes = [Mount("/v/data-sub", "/data/sub", read_only=True), Mount("/v/data", "/data"),
               Mount("/v/cache", "/cache", propagation="HostToContainer")]
    spec = build_spec(context(), inputs({"command": ["x"]}, mounts=volumes))
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm", "/etc/hosts",
                     "/etc/hostname", "/etc/resolv.conf", "/data", "/cache", "/data/sub"]
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert by_dest["/dev/shm"]["source"] == "/r/pods/u-1/shm"
    assert by_dest["/data/sub"] == {"destination": "/data/sub", "type": "bind", "source": "/v/data-sub",
                                    "options": ["rbind", "rprivate", "ro"]}
    assert by_dest["/cache"]["options"] == ["rbind", "rslave", "rw"]


def test_a_volume_replaces_a_default_mount_at_the_same_place() -> None:
    spec = build_spec(context(), inputs({"command": ["x"]}, mounts=[Mount("/v/hosts", "/etc/hosts")]))
    hosts = [m for m in spec["mounts"] if m["destination"] == "/etc/hosts"]
    assert [m["source"] for m in hosts] == ["/v/hosts"]


def test_working_dir_and_stop_signal() -> None:
    spec = build_spec(context(), inputs({"command": ["x"]}, image={"WorkingDir": "/srv"}))
    assert spec["process"]["cwd"] == "/srv"
    assert build_spec(context(), inputs({"command": ["x"], "workingDir": "/w"}))["process"]["cwd"] == "/w"
    assert stop_signal({}, {}) == 15 and stop_signal({}, {"StopSignal": "SIGQUIT"}) == 3
    assert stop_signal({"lifecycle": {"stopSignal": "SIGUSR1"}}, {"StopSignal": "SIGQUIT"}) == 10
    with pytest.raises(SpecError):
        stop_signal({}, {"StopSignal": "SIGNOPE"})


# ----- /etc/hosts, /etc/resolv.conf -----------------------------------------------------------------

def test_hosts_file_as_the_kubelet_writes_it() -> None:
    p = pod(hostname="h", subdomain="sub", hostAliases=[{"ip": "10.1.1.1", "hostnames": ["a", "b"]}])
    text = etcfiles.hosts_file(p, ["198.18.0.5"], cluster_domain="cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "198.18.0.5\th.sub.prod.svc.cluster.local\th\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n10.1.1.1\ta\tb\n")


def test_resolv_conf_cluster_first() -> None:
    conf = etcfiles.pod_dns(pod(), cluster_dns=["198.19.0.10"], cluster_domain="cluster.local",
                            node_resolv="nameserver 1.1.1.1\nsearch corp.example\n")
    assert etcfiles.resolv_conf(conf) == ("search prod.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                                          "nameserver 198.19.0.10\noptions ndots:5\n")


def test_resolv_conf_policies() -> None:
    node = "nameserver 1.1.1.1\nsearch corp.example\noptions edns0\n"
    default = etcfiles.pod_dns(pod(dnsPolicy="Default"), cluster_dns=["198.19.0.10"], cluster_domain="c",
                               node_resolv=node)
    assert (default.servers, default.searches, default.options) == (["1.1.1.1"], ["corp.example"], ["edns0"])
    host_net = etcfiles.pod_dns(pod(hostNetwork=True), cluster_dns=["198.19.0.10"], cluster_domain="c",
                                node_resolv=node)
    assert host_net.servers == ["1.1.1.1"]
    none = etcfiles.pod_dns(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["9.9.9.9"], "searches": ["x.example"], "options": [{"name": "ndots", "value": "2"}]}),
        cluster_dns=["198.19.0.10"], cluster_domain="c", node_resolv=node)
    assert etcfiles.resolv_conf(none) == "search x.example\nnameserver 9.9.9.9\noptions ndots:2\n"
    merged = etcfiles.pod_dns(pod(dnsConfig={"options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]}),
                              cluster_dns=["198.19.0.10"], cluster_domain="c", node_resolv=node)
    assert merged.options == ["ndots:1", "rotate"]


def test_hostname_is_cut_to_63_characters() -> None:
    assert etcfiles.hostname({"metadata": {"name": "a" * 62 + "-b"}}) == "a" * 62
