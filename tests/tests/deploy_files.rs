//! The deploy files are the tested files: the whole nginx configuration of
//! deploy/ loads on Debian's nginx (`nginx -t`), deploy/haproxy.cfg on
//! Debian's HAProxy (`haproxy -c`), and every Dockerfile's and compose
//! service's entry point is a command line the built binaries accept. (The
//! parts clients see run in tests/tests/balancer.rs.) Needs no servers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A copy of `deploy/` with the gateways' names made addresses this machine
/// resolves (the only change), in a fresh directory.
fn deploy_copy(tag: &str) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new().prefix(tag).tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        let text = std::fs::read_to_string(from).unwrap();
        std::fs::write(
            to,
            text.replace("gateway-1:8080", "127.0.0.1:18081").replace("gateway-2:8080", "127.0.0.1:18082"),
        )
        .unwrap();
    };
    copy(&repo().join("deploy/nginx.conf"), &tmp.path().join("nginx.conf"));
    std::fs::create_dir(tmp.path().join("yadtq")).unwrap();
    copy(&repo().join("deploy/nginx/yadtq.conf"), &tmp.path().join("yadtq/yadtq.conf"));
    copy(&repo().join("deploy/haproxy.cfg"), &tmp.path().join("haproxy.cfg"));
    tmp
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_deploy_nginx_configuration_loads_on_debians_nginx() {
    let Some(nginx) = std::env::var_os("YADTQ_NGINX").map(PathBuf::from).or_else(|| find(&["/usr/sbin/nginx"])) else {
        eprintln!("skipped: no nginx binary (scripts/test.sh installs Debian's nginx-light)");
        return;
    };
    let tmp = deploy_copy("yadtq-nginx-t");
    // As compose mounts them: nginx.conf, and deploy/nginx/ as yadtq/ beside it.
    let (ok, out) = run(Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(tmp.path())
        .arg("-c")
        .arg(tmp.path().join("nginx.conf"))
        .args(["-e", "stderr"]));
    assert!(ok, "nginx -t on deploy/nginx.conf:\n{out}");
}

#[test]
fn the_deploy_haproxy_configuration_loads_on_debians_haproxy() {
    let Some(haproxy) = std::env::var_os("YADTQ_HAPROXY").map(PathBuf::from).or_else(|| find(&["/usr/sbin/haproxy"]))
    else {
        eprintln!("skipped: no haproxy binary (scripts/test.sh installs Debian's haproxy)");
        return;
    };
    let tmp = deploy_copy("yadtq-haproxy-c");
    let (ok, out) = run(Command::new(haproxy).arg("-c").arg("-f").arg(tmp.path().join("haproxy.cfg")));
    assert!(ok, "haproxy -c on deploy/haproxy.cfg:\n{out}");
}

/// The JSON array of a Dockerfile's last `ENTRYPOINT` (exec form).
fn entrypoint(dockerfile: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ENTRYPOINT"))
        .unwrap_or_else(|| panic!("{} has no ENTRYPOINT", dockerfile.display()));
    serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("{}: ENTRYPOINT {line} is not the exec form: {e}", dockerfile.display()))
}

#[test]
fn every_image_entry_point_is_a_command_line_the_binaries_accept() {
    let mut dockerfiles: Vec<PathBuf> = [repo(), repo().join("deploy")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("Dockerfile")))
        .collect();
    dockerfiles.sort();
    assert!(dockerfiles.len() >= 2, "the gateway's and the worker's Dockerfiles: {dockerfiles:?}");
    // compose.yaml builds these images and overrides neither entry point nor command.
    let compose = std::fs::read_to_string(repo().join("compose.yaml")).unwrap();
    for file in &dockerfiles {
        let name = file.strip_prefix(repo()).unwrap().display().to_string();
        assert!(compose.contains(&format!("dockerfile: {name}")), "compose.yaml builds {name}");
    }
    assert!(
        !compose.lines().any(|l| l.trim_start().starts_with("entrypoint:")),
        "a compose entry point would replace the images' (check it here)"
    );
    for file in &dockerfiles {
        let argv = entrypoint(file);
        let bin = yadtq_tests::binary(&argv[0]);
        assert!(bin.exists(), "{}: ENTRYPOINT runs {}, which the workspace does not build", file.display(), argv[0]);
        // `docker run IMAGE --help` appends to the entry point.
        let (ok, out) = run(Command::new(&bin).args(&argv[1..]).arg("--help"));
        assert!(ok, "{}: {argv:?} --help failed:\n{out}", file.display());
    }
}
