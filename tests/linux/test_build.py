"""`husk build`: a Dockerfile that compiles a C program with gcc in a
Debian image (built here from Debian packages with debootstrap), run on
husk's own store, then run by husk and by podman (with husk as its
runtime).  The layers are read back from the saved image: the RUN's
overlay upper directory, with its whiteouts as .wh. entries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.root

HELLO_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *home = getenv("APP_HOME");
    printf("compiled hello, APP_HOME=%s\n", home ? home : "(unset)");
    return 0;
}
"""

DOCKERFILE = """\
# A compile inside the build container, and the config instructions.
FROM debian-gcc
ARG FLAGS=-O2
ENV APP_HOME=/opt/app \\
    MODE=release
WORKDIR $APP_HOME
COPY hello.c ./
RUN gcc $FLAGS -o /usr/local/bin/hello hello.c && rm hello.c && rm -rf /usr/share/doc
LABEL org.example.built-by=husk
EXPOSE 8080
STOPSIGNAL SIGINT
CMD ["hello"]
"""


@pytest.fixture(scope="module")
def gcc_image(tmp_path_factory):
    import debian_image

    return debian_image.gcc_layout(str(tmp_path_factory.mktemp("gcc") / "layout"))


@pytest.fixture
def h(husk_env, gcc_image, layouts):
    husk_env("load", "-q", "--name", "debian-gcc", "-i", gcc_image, check=True)
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    husk_env("load", "-q", "--name", "vols", "-i", layouts["volumes"], check=True)
    return husk_env


def context(tmp_path, dockerfile: str, **files: str) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (ctx / name).write_text(text)
    return str(ctx)


def saved_layers(h, image: str, tmp_path) -> tuple[dict, list[list[str]]]:
    """The image config and each layer's entry names, from `husk save`."""
    archive = tmp_path / "image.tar"
    h("save", "-o", str(archive), image, check=True)
    out = tmp_path / "saved"
    with tarfile.open(archive) as t:
        t.extractall(out)
    blob = lambda d: out / "blobs" / "sha256" / d[7:]
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    names = []
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as t:
            names.append(t.getnames())
    return config, names


def test_a_dockerfile_compiles_and_runs(h, tmp_path):
    ctx = context(tmp_path, DOCKERFILE, **{"hello.c": HELLO_C})
    r = h("build", "-t", "hello:1", ctx)
    assert r.code == 0, r.err
    assert "STEP 6/10: RUN gcc" in r.out and "Successfully tagged hello:1" in r.out
    assert h("run", "--rm", "--pull=never", "hello:1", check=True).out == "compiled hello, APP_HOME=/opt/app\n"

    config, layers = saved_layers(h, "hello:1", tmp_path)
    c = config["config"]
    assert {"APP_HOME=/opt/app", "MODE=release"} <= set(c["Env"]) and not any("FLAGS" in e for e in c["Env"])
    assert (c["WorkingDir"], c["Cmd"], c["ExposedPorts"], c["StopSignal"]) == (
        "/opt/app", ["hello"], {"8080/tcp": {}}, "SIGINT")
    assert c["Labels"] == {"org.example.built-by": "husk"}
    # The base layer, COPY's layer, RUN's layer: one each, nothing for the config steps.
    assert len(layers) == 3 and len(config["rootfs"]["diff_ids"]) == 3
    copy_layer, run_layer = layers[1], layers[2]
    assert "opt/app/hello.c" in copy_layer
    # RUN removed hello.c (COPY's) and /usr/share/doc (the base's): whiteouts.
    assert {"usr/local/bin/hello", "opt/app/.wh.hello.c", "usr/share/.wh.doc"} <= set(run_layer)
    assert not any(n.startswith("usr/share/doc/") for n in run_layer)
    history = [e["created_by"] for e in config["history"]]
    assert history[-1] == 'husk build: CMD ["hello"]'


def test_the_cache_reuses_every_step_and_no_cache_runs_them(h, tmp_path):
    ctx = context(tmp_path, DOCKERFILE, **{"hello.c": HELLO_C})
    first = h("build", "-q", "-t", "hello", ctx, check=True).out.strip()
    again = h("build", "-t", "hello", ctx, check=True)
    assert again.out.count("--> CACHED") == 8 and again.out.strip().endswith(first)
    # A changed file in the context: COPY and what follows run again.
    with open(os.path.join(ctx, "hello.c"), "a") as f:
        f.write("/* changed */\n")
    changed = h("build", "-t", "hello", ctx, check=True)
    assert changed.out.count("--> CACHED") == 2 and "STEP 5/10" in changed.out
    # A build arg changes RUN's key.
    r = h("build", "--build-arg", "FLAGS=-O0", "-t", "hello", ctx, check=True)
    assert r.out.count("--> CACHED") == 3
    r = h("build", "--no-cache", "-q", "-t", "hello", ctx, check=True)
    assert r.out.strip().startswith("sha256:")
    assert h("run", "--rm", "--pull=never", "hello", check=True).out.startswith("compiled hello")


def test_add_unpacks_a_local_archive_and_copy_takes_chown(h, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "tree").mkdir()
    (ctx / "tree" / "a.txt").write_text("from the archive\n")
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as t:
        t.add(ctx / "tree", arcname="tree")
    (ctx / "owned").write_text("owned\n")
    (ctx / "Dockerfile").write_text("FROM bb\nADD bundle.tar.gz /srv/\nCOPY --chown=user:user --chmod=600 owned /srv/\n"
                                    'CMD ["sh", "-c", "cat /srv/tree/a.txt; stat -c \'%U %a\' /srv/owned"]\n')
    h("build", "-t", "added", str(ctx), check=True)
    assert h("run", "--rm", "--pull=never", "added", check=True).out == "from the archive\nuser 600\n"


def test_copy_takes_every_destination_form_docker_does(h, tmp_path):
    """`COPY x .` (the commonest form), ./, a path relative to WORKDIR, a
    directory (trailing /) against a file name, a missing parent, .., and
    an absolute path."""
    files = {name: f"{name}\n" for name in ("dot", "dotslash", "rel", "indir", "asfile", "deep", "up", "abs")}
    dockerfile = ("FROM bb\nWORKDIR /app\nCOPY dot .\nCOPY dotslash ./\nCOPY rel sub/rel\nCOPY indir sub/\n"
                  "COPY asfile named\nCOPY deep new/parent/deep\nCOPY up ..\nCOPY abs /srv/abs.txt\n"
                  "WORKDIR /\nCOPY dot app/also/\n"
                  'CMD ["sh", "-c", "cd /app && cat dot dotslash sub/rel sub/indir named new/parent/deep /up '
                  '/srv/abs.txt also/dot"]\n')
    h("build", "-t", "dests", context(tmp_path, dockerfile, **files), check=True)
    out = h("run", "--rm", "--pull=never", "dests", check=True).out
    assert out == "dot\ndotslash\nrel\nindir\nasfile\ndeep\nup\nabs\ndot\n"


MULTI_STAGE = """\
ARG BASE=bb
FROM ${BASE} AS builder
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from the builder" > /out/greeting && echo kept-out > /out/other
FROM ${BASE} AS tester
RUN echo tested > /tested
FROM bb
ARG BASE
COPY --from=builder /out/greeting /srv/
COPY --from=0 /out/greeting /srv/by-index
COPY --from=tester /tested /srv/
COPY . /ctx/
ENV BASE_WAS=$BASE
CMD ["sh", "-c", "cat /srv/greeting /srv/by-index /srv/tested; ls /ctx /ctx/sub; echo $BASE_WAS; ls /out 2>&1 || true"]
"""


def test_a_multi_stage_build_with_target_global_args_and_dockerignore(h, tmp_path):
    ctx = context(tmp_path, MULTI_STAGE, **{"app.txt": "app\n", "debug.log": "noise\n", "keep.log": "kept\n",
                                            ".dockerignore": "*.log\n!keep.log\nsub/secret\n"})
    os.mkdir(os.path.join(ctx, "sub"))
    for name in ("secret", "public"):
        with open(os.path.join(ctx, "sub", name), "w") as f:
            f.write(name)
    r = h("build", "-t", "ms:1", "-t", "ms:2", ctx, check=True)
    assert "STEP 1/14: ARG BASE=bb" in r.out
    names = h.names()
    assert names["docker.io/library/ms:1"] == names["docker.io/library/ms:2"]
    out = h("run", "--rm", "--pull=never", "ms:1", check=True).out
    assert out == ("hello from the builder\nhello from the builder\ntested\n/ctx:\nDockerfile\napp.txt\nkeep.log\nsub\n\n"
                   "/ctx/sub:\npublic\nbb\nls: /out: No such file or directory\n")
    # Only the final stage's layers are in the image: bb's, and one per COPY.
    config, layers = saved_layers(h, "ms:1", tmp_path)
    assert len(layers) == 5
    again = h("build", "-t", "ms:1", ctx, check=True)
    assert again.out.count("--> CACHED") == 8 and "STEP" in again.out
    # --target stops after that stage; a build arg reaches the stage that declares it.
    h("build", "--target", "builder", "--build-arg", "GREETING=bonjour", "-t", "ms:builder", ctx, check=True)
    assert h("run", "--rm", "--pull=never", "ms:builder", "cat", "/out/greeting").out == "bonjour from the builder\n"


@pytest.mark.parametrize("dockerfile,flags,where,text", [
    ("FROM bb AS one\nRUN true\n", ["--target", "two"], "--target", "'two': no stage of that name"),
    ("FROM bb\nCOPY --from=3 /etc/hostname /x\n", [], "Dockerfile:2", "no earlier stage 3"),
    ("FROM bb\nCOPY debug.log /x\n", [], "Dockerfile:2", "excluded by .dockerignore"),
    ("FROM bb AS a\nFROM bb AS A\n", [], "Dockerfile:2", "a stage of that name comes before"),
    ("ARG X=1\nRUN true\nFROM bb\n", [], "Dockerfile:2", "only ARG may come there"),
])
def test_multi_stage_mistakes_are_one_line(h, tmp_path, dockerfile, flags, where, text):
    ctx = context(tmp_path, dockerfile, **{"debug.log": "x\n", ".dockerignore": "*.log\n"})
    r = h("build", *flags, "-t", "wrong", ctx)
    assert r.code != 0 and where in r.err and text in r.err and "Traceback" not in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "wrong" not in h("images").out


def test_the_docker_tests_web_dockerfile_builds_on_husk(h, gcc_image, tmp_path):
    """The Dockerfile docker build and podman build compile in their tests
    (WORKDIR, COPY x ./, RUN gcc, ENV with continuation lines) builds here too."""
    from test_compose import WEB_C, WEB_DOCKERFILE

    h("load", "-q", "--name", "localhost/debian-gcc", "-i", gcc_image, check=True)
    h("build", "-q", "-t", "web", context(tmp_path, WEB_DOCKERFILE, **{"web.c": WEB_C}), check=True)
    r = h("run", "--rm", "--pull=never", "web", "sh", "-c", "test -x /usr/local/bin/web && ls /src && echo $DB_HOST")
    assert (r.code, r.out) == (0, "db\n"), r.err


def test_copy_onto_a_directory_that_is_a_file_is_one_line(h, tmp_path):
    r = h("build", "-t", "clash", context(tmp_path, "FROM bb\nCOPY a /etc/passwd/\n", a="a\n"))
    assert r.code != 0 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "Dockerfile:2" in r.err and "/etc/passwd/" in r.err
    assert "clash" not in h("images", check=True).out


def test_copy_cannot_leave_the_context_or_the_rootfs(h, tmp_path):
    # A context symlink to the host's /etc/shadow resolves inside the context.
    ctx = context(tmp_path, "FROM bb\nCOPY secret /\n")
    os.symlink("/etc/shadow", os.path.join(ctx, "secret"))
    r = h("build", "-t", "leak", ctx)
    assert r.code != 0 and "Dockerfile:2" in r.err and "secret" in r.err
    # The image's /data is a symlink to /etc: the file lands in the image's /etc.
    ctx = context(tmp_path, "FROM vols\nCOPY marker-husk-build /data/\n", **{"marker-husk-build": "inside\n"})
    h("build", "-t", "inside", ctx, check=True)
    assert not os.path.exists("/etc/marker-husk-build")
    assert h("run", "--rm", "--pull=never", "inside", "cat", "/etc/marker-husk-build", check=True).out == "inside\n"


@pytest.mark.parametrize("dockerfile,where,text", [
    ("FROM bb\nRUN echo partial > /f; exit 3\n", "Dockerfile:2", "exited with 3"),
    ("FROM bb\nCOPY missing.txt /\n", "Dockerfile:2", "missing.txt"),
    ("FROM bb\nFROBNICATE x\n", "Dockerfile:2", "unknown instruction"),
    ("ARG ONLY=1\n", "Dockerfile", "no FROM"),
    ("RUN true\n", "Dockerfile", "FROM"),
    ("FROM bb\nEXPOSE http\n", "Dockerfile:2", "EXPOSE"),
    ("FROM bb\nADD https://example.invalid/x /\n", "Dockerfile:2", "URL"),
])
def test_a_failed_build_names_the_line_and_leaves_no_image(h, tmp_path, dockerfile, where, text):
    before = h("images", "-q", check=True).out
    r = h("build", "-t", "broken", context(tmp_path, dockerfile))
    assert r.code != 0 and where in r.err and text in r.err, r.err
    assert h("images", "-q", check=True).out == before
    assert not os.listdir(os.path.join(h.store, "tmp"))


@pytest.mark.skipif(shutil.which("podman") is None, reason="Debian's podman is not installed")
def test_the_built_image_runs_under_podman_with_husk(h, tmp_path):
    from test_podman import Podman, remove_conmon_cgroups

    ctx = context(tmp_path, DOCKERFILE, **{"hello.c": HELLO_C})
    h("build", "-q", "-t", "hello", ctx, check=True)
    archive = str(tmp_path / "hello.tar")
    h("save", "-o", archive, "hello", check=True)
    import tempfile

    base = tempfile.mkdtemp(prefix="hpm", dir="/tmp")  # podman wants a runroot under 50 characters
    pm = Podman(base)
    try:
        image = pm.ok("load", "-q", "-i", archive).strip().split()[-1]
        r = pm("run", "--rm", "--pull", "never", image)
        assert r.returncode == 0 and r.stdout == "compiled hello, APP_HOME=/opt/app\n", r.stderr
    finally:
        pm("rm", "-a", "-f")
        pm("system", "reset", "-f")
        subprocess.run(["umount", "-R", os.path.join(base, "storage")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        remove_conmon_cgroups()
