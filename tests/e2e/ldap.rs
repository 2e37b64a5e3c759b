//! Sign-in through a real LDAP directory: a private OpenLDAP `slapd` per test (its own
//! config, port and data under a temporary directory, StartTLS with a test CA), berth with
//! `[auth.ldap]` pointing at it, and docker and the token endpoint as clients.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::auth::{basic_header, claims};
use crate::harness::{Backend, Berth, backend, tool};
use crate::real_clients::{Docker, busybox, docker_build};
use crate::tls::TestCa;

const SUFFIX: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PASSWORD: &str = "directory-admin-secret";
const SERVICE_PASSWORD: &str = "berth-service-secret";
const ALICE_PASSWORD: &str = "alice-directory-pw";
const BOB_PASSWORD: &str = "bob-directory-pw";

/// A private slapd.
struct Slapd {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts a directory with `alice` (in group `devs`), `bob` and the service account
    /// `cn=berth`; `None` (skip) when slapd is missing outside CI.
    fn start() -> Option<Self> {
        let slapd = tool("slapd").or_else(|| {
            let p = PathBuf::from("/usr/sbin/slapd");
            p.is_file().then_some(p)
        });
        let Some(slapd) = slapd else {
            assert!(!crate::harness::required(), "slapd is required in CI");
            return None;
        };
        tool("ldapmodify")?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = TestCa::new("berth test directory CA");
        let (chain, key) = ca.issue();
        std::fs::write(d.join("cert.pem"), chain).unwrap();
        std::fs::write(d.join("key.pem"), key).unwrap();
        std::fs::write(d.join("ca.pem"), &ca.pem).unwrap();
        std::fs::create_dir(d.join("data")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload ppolicy\n\
             pidfile {d}/slapd.pid\n\
             TLSCertificateFile {d}/cert.pem\n\
             TLSCertificateKeyFile {d}/key.pem\n\
             database mdb\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {d}/data\n\
             overlay ppolicy\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let person = |uid: &str, pw: &str| {
            format!(
                "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {pw}\n\n"
            )
        };
        let ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: cn=berth,{SUFFIX}\nobjectClass: person\ncn: berth\nsn: berth\nuserPassword: {SERVICE_PASSWORD}\n\n\
             {}{}\
             dn: cn=devs,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: devs\nmember: uid=alice,ou=people,{SUFFIX}\n\n",
            person("alice", ALICE_PASSWORD),
            person("bob", BOB_PASSWORD),
        );
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        let out = Command::new(slapd.with_file_name("slapadd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new(&slapd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Self {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not start: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Applies an LDIF change as the directory's administrator.
    fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// berth's `[auth.ldap]` for this directory: StartTLS with the test CA, the group `devs`
    /// giving membership of team `acme/devs`, answers cached for one second.
    fn config(&self) -> String {
        let d = self.dir.path();
        std::fs::write(d.join("bind-password"), format!("{SERVICE_PASSWORD}\n")).unwrap();
        format!(
            r#"
[auth.ldap]
url = "ldap://127.0.0.1:{port}"
starttls = true
ca_file = "{d}/ca.pem"
bind_dn = "cn=berth,{SUFFIX}"
bind_password_file = "{d}/bind-password"
user_base = "ou=people,{SUFFIX}"
user_filter = "(&(objectClass=inetOrgPerson)(uid={{name}}))"
id_attribute = "entryUUID"
disabled_filter = "(pwdAccountLockedTime=*)"
group_base = "ou=groups,{SUFFIX}"
group_filter = "(&(objectClass=groupOfNames)(member={{dn}}))"
cache_ttl_secs = 1

[[auth.ldap.group]]
group = "devs"
org = "acme"
team = "devs"
"#,
            port = self.port,
            d = d.display()
        )
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// berth with authentication, `root`, organization `acme` whose team `devs` may write, and
/// `[auth.ldap]` pointing at `slapd`.
fn berth(slapd: &Slapd) -> (Berth, tempfile::TempDir) {
    let (b, dir) =
        crate::policies::start_with_config(&slapd.config(), &[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password-1\n",
    );
    b.admin_ok(&["org", "add", "acme", "--owner", "root"], "");
    b.admin_ok(&["team", "add", "acme", "devs"], "");
    b.admin_ok(&["team", "grant", "acme", "devs", "write"], "");
    (b, dir)
}

/// One berth, or two on one database on PostgreSQL + S3 (replicas), set up as [`berth`].
fn replicas(slapd: &Slapd) -> (Vec<Berth>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, slapd.config()).expect("config");
    let env = [
        ("BERTH_CONFIG", file.to_str().expect("path")),
        ("BERTH_AUTH_ENABLED", "true"),
    ];
    let n = if backend() == Backend::PostgresS3 {
        2
    } else {
        1
    };
    let shared = dir.path().join("shared");
    let all: Vec<Berth> = (0..n).map(|_| Berth::start_in(&shared, &env)).collect();
    let b = &all[0];
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password-1\n",
    );
    b.admin_ok(&["org", "add", "acme", "--owner", "root"], "");
    b.admin_ok(&["team", "add", "acme", "devs"], "");
    b.admin_ok(&["team", "grant", "acme", "devs", "write"], "");
    (all, dir)
}

/// `GET /token` for `scope` with Basic credentials: (status, body).
async fn token(b: &Berth, user: &str, password: &str, scope: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(b.url(&format!(
            "/token?service=berth&scope={scope}&offline_token=true"
        )))
        .header("authorization", basic_header(user, password))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The actions a token grants on its first scope.
fn actions(body: &Value) -> Value {
    claims(body["token"].as_str().unwrap())["access"][0]["actions"].clone()
}

/// `POST /token` with a refresh token: (status, body).
async fn refresh(b: &Berth, refresh_token: &str, scope: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(b.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&service=berth&client_id=test&scope={}&refresh_token={refresh_token}",
            scope.replace(':', "%3A").replace(',', "%2C").replace('/', "%2F")
        ))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

const PUSH: &str = "repository:acme/app:pull,push";

#[tokio::test]
async fn directory_users_sign_in_and_groups_locks_and_deletions_apply_at_the_next_token() {
    let Some(slapd) = Slapd::start() else { return };
    let (b, _config) = berth(&slapd);

    // Search, then bind: the directory's password works; a wrong or empty one does not.
    let (status, body) = token(&b, "alice", ALICE_PASSWORD, PUSH).await;
    assert_eq!(status, StatusCode::OK, "{body} {}", b.logs());
    assert_eq!(actions(&body), serde_json::json!(["pull", "push"]));
    assert_eq!(
        token(&b, "alice", "wrong", PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token(&b, "alice", "", PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );
    // bob is in no group: signed in, but no right on acme.
    let (status, bob) = token(&b, "bob", BOB_PASSWORD, PUSH).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bob["token"].is_string());
    assert_ne!(actions(&bob), serde_json::json!(["pull", "push"]));
    // The sign-in provisioned a directory account.
    let users = b.admin_ok(&["user", "list"], "");
    assert!(users.contains("alice"), "{users}");

    // A filter-breaking or NUL-carrying name finds nobody.
    for name in ["*)(uid=*", "alice\0", "*", "alice)(uid=*"] {
        assert_eq!(
            token(&b, name, ALICE_PASSWORD, PUSH).await.0,
            StatusCode::UNAUTHORIZED,
            "{name:?}"
        );
    }

    // Removing alice from `devs` in the directory takes her out of the team at her next
    // token, once the cache (1 s here) has let go, for a password and a refresh token.
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    slapd.modify(&format!(
        "dn: cn=devs,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,{SUFFIX}\n-\ndelete: member\nmember: uid=alice,ou=people,{SUFFIX}\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, now) = refresh(&b, &refresh_token, PUSH).await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_ne!(actions(&now), serde_json::json!(["pull", "push"]));
    let (_, now) = token(&b, "alice", ALICE_PASSWORD, PUSH).await;
    assert_ne!(actions(&now), serde_json::json!(["pull", "push"]));
    let (_, now) = token(&b, "bob", BOB_PASSWORD, PUSH).await;
    assert_eq!(actions(&now), serde_json::json!(["pull", "push"]));
    let (ok, audit, err) = b.cli(&["audit", "--json"], &[]);
    assert!(ok, "{err}");
    for action in ["user.signin.external", "team.member.add", "member.remove"] {
        assert!(audit.contains(action), "{action} not in {audit}");
    }

    // A locked account (OpenLDAP's ppolicy attribute) is refused at its next token,
    // password or refresh token.
    slapd.modify(&format!(
        "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        token(&b, "alice", ALICE_PASSWORD, PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&b, &refresh_token, PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A deleted one too.
    let (_, bob) = token(&b, "bob", BOB_PASSWORD, PUSH).await;
    let bob_refresh = bob["refresh_token"].as_str().unwrap().to_owned();
    slapd.modify(&format!(
        "dn: uid=bob,ou=people,{SUFFIX}\nchangetype: delete\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        refresh(&b, &bob_refresh, PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token(&b, "bob", BOB_PASSWORD, PUSH).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_the_directory_down_nobody_gets_in_and_the_error_says_why() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let (b, _config) = berth(&slapd);
    let (status, body) = token(&b, "alice", ALICE_PASSWORD, PUSH).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    slapd.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (status, body) in [
        token(&b, "alice", ALICE_PASSWORD, PUSH).await,
        token(&b, "bob", BOB_PASSWORD, PUSH).await,
        token(&b, "alice", "wrong", PUSH).await,
        refresh(&b, &refresh_token, PUSH).await,
    ] {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.to_string().contains("directory"), "{body}");
    }
    // Local accounts are not the directory's: root still signs in.
    assert_eq!(
        token(&b, "root", "root-password-1", PUSH).await.0,
        StatusCode::OK
    );
    assert!(b.logs().contains("LDAP directory"), "{}", b.logs());
}

#[test]
fn docker_logs_in_pushes_and_pulls_with_a_directory_password() {
    let Some(docker) = Docker::get() else { return };
    let Some(busybox) = busybox() else { return };
    let Some(slapd) = Slapd::start() else { return };
    let (b, _config) = berth(&slapd);
    let image = format!("{}/acme/app:v1", b.host());
    docker_build(&docker, &busybox, "hello from the directory", &image);
    docker.login(&b.host(), "alice", ALICE_PASSWORD);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    docker.ok(&["pull", &image]);
    // bob is not in `devs`: he signs in but may not push to acme.
    docker.login(&b.host(), "bob", BOB_PASSWORD);
    let (pushed, _, err) = docker.run(&["push", &image]);
    assert!(!pushed, "bob pushed to acme: {err}");
}

/// Several replicas, each with its own directory cache: `docker login` on one, a group
/// change in the directory, and the next token on the other follows it once that replica's
/// cache (1 s here) has let go; a locked account is refused on both.
#[tokio::test]
async fn directory_changes_reach_every_replica() {
    let Some(docker) = Docker::get() else { return };
    let Some(busybox) = busybox() else { return };
    let Some(slapd) = Slapd::start() else { return };
    let (all, _dir) = replicas(&slapd);
    let (a, b) = (&all[0], &all[all.len() - 1]);
    let image = format!("{}/acme/app:v1", a.host());
    docker_build(&docker, &busybox, "hello from replica A", &image);
    docker.login(&a.host(), "alice", ALICE_PASSWORD);
    docker.ok(&["push", &image]);
    // Replica B has asked the directory about alice too: its cache holds her groups.
    let (status, body) = token(b, "alice", ALICE_PASSWORD, PUSH).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(actions(&body), serde_json::json!(["pull", "push"]));

    slapd.modify(&format!(
        "dn: cn=devs,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: cn=berth,{SUFFIX}\n-\ndelete: member\nmember: uid=alice,ou=people,{SUFFIX}\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = token(b, "alice", ALICE_PASSWORD, PUSH).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(
        actions(&body),
        serde_json::json!(["pull", "push"]),
        "replica B"
    );
    let (_, body) = token(a, "alice", ALICE_PASSWORD, PUSH).await;
    assert_ne!(
        actions(&body),
        serde_json::json!(["pull", "push"]),
        "replica A"
    );
    docker.ok(&["rmi", &image]);

    // Locked in the directory: refused on both, password and refresh token alike.
    let (_, body) = token(a, "bob", BOB_PASSWORD, PUSH).await;
    let bob_refresh = body["refresh_token"].as_str().expect("refresh").to_owned();
    slapd.modify(&format!(
        "dn: uid=bob,ou=people,{SUFFIX}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for r in [a, b] {
        assert_eq!(
            token(r, "bob", BOB_PASSWORD, PUSH).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh(r, &bob_refresh, PUSH).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (logged_in, _, _) = docker.run(&[
        "login",
        &b.host(),
        "--username",
        "bob",
        "--password",
        BOB_PASSWORD,
    ]);
    assert!(!logged_in, "a locked directory user logged in");
}

/// An open web UI session of a directory user ends at the next request once the directory
/// says the user is disabled or gone (after the cache's 1 s here), as tokens do.
#[tokio::test]
async fn web_sessions_of_disabled_or_deleted_directory_users_end() {
    let Some(slapd) = Slapd::start() else { return };
    let (all, _dir) = replicas(&slapd);
    let b = &all[all.len() - 1];
    let mut alice = crate::ui::Web::new(b);
    alice.sign_in("alice", ALICE_PASSWORD).await;
    let mut bob = crate::ui::Web::new(b);
    bob.sign_in("bob", BOB_PASSWORD).await;
    for (web, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let page = web.get("/ui/account").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.has(&format!("Account {name}")), "{}", page.body);
    }
    slapd.modify(&format!(
        "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    ));
    slapd.modify(&format!(
        "dn: uid=bob,ou=people,{SUFFIX}\nchangetype: delete\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kept = alice.cookies.clone();
    for web in [&mut alice, &mut bob] {
        let page = web.get("/ui/account").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(
            page.location().starts_with("/ui/login"),
            "{}",
            page.location()
        );
    }
    // Ended, not only refused for a while: unlocked again, alice must sign in again.
    slapd.modify(&format!(
        "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    alice.cookies = kept;
    let page = alice.get("/ui/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    alice.sign_in("alice", ALICE_PASSWORD).await;
}
