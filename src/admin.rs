//! `berth admin`: manage users, organizations, teams, grants, visibility, access tokens and
//! token signing keys directly in the configured database (SQLite or PostgreSQL), without the web UI or API.

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use berth_registry::auth::Role;
use berth_registry::auth::jwt::format_time;
use berth_registry::config::Config;
use berth_registry::meta::accounts::{AccountKind, AccountRecord};
use berth_registry::meta::events::Origin;
use berth_registry::service::accounts::{Accounts, Authority, login_name};
use clap::{Args, Subcommand};

/// `berth admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users: people and services that log in.
    #[command(subcommand)]
    User(UserCommand),
    /// Organizations: namespaces with members, owners and teams.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Teams of an organization and their roles.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Repository settings.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Access tokens: personal tokens (owned by a user) and robot accounts (owned by an
    /// organization, logging in as ORG+NAME).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Namespaces: who owns each (by record, never by a matching name).
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// The keys that sign registry tokens (kept in the database unless
    /// `auth.signing_key_file` is set).
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `berth admin key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a new signing key. Every replica publishes it at once and signs with it after
    /// `auth.key_activation_delay_secs`; the keys it replaces stay accepted for one token
    /// lifetime after that (their refresh tokens until those expire), then are deleted.
    Rotate {
        /// Sign with the new key at once (a leaked key): replicas switch at their next key
        /// reload, and accept the new key's tokens at once. Then `retire` the old key.
        #[arg(long)]
        now: bool,
    },
    /// Delete a key at once (a leaked one): tokens it signed are refused, and it leaves the
    /// JWKS, on every replica at its next key reload (`auth.key_reload_secs`). The key that
    /// signs now cannot be retired; `rotate --now` first.
    Retire {
        /// The key's id (`berth admin key list`).
        kid: String,
    },
    /// List the signing keys with their state and times.
    List,
}

/// `berth admin namespace ...`
#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// List namespaces with their owner and repository count. A namespace without an owner
    /// (repositories pushed before any account had its name, or left by a deleted account) is
    /// for administrators alone until an account adopts it (`user add`/`org add`
    /// `--adopt-namespace`).
    List,
}

/// `berth admin user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// User name (also their namespace).
        name: String,
        /// Make the user a hub administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required; keeps it out of shell history
        /// and the process list).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Give the new user the ownerless namespace of that name and the repositories in it
        /// (refused otherwise: an account never inherits repositories by its name alone).
        #[arg(long)]
        adopt_namespace: bool,
    },
    /// List users.
    List,
    /// Set a user's password from standard input (signs them out of docker everywhere).
    Passwd {
        /// User name.
        name: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Make a user a hub administrator.
    Promote {
        /// User name.
        name: String,
    },
    /// Take hub administration away from a user.
    Demote {
        /// User name.
        name: String,
    },
    /// Disable a user: they can no longer log in and their tokens stop working.
    Disable {
        /// User name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User name.
        name: String,
    },
    /// Delete a user with their memberships and tokens (their repositories stay, for
    /// administrators alone, and the name stays reserved while they do).
    Delete {
        /// User name.
        name: String,
    },
}

/// `berth admin org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Add {
        /// Organization name (also its namespace).
        name: String,
        /// A user who owns it.
        #[arg(long)]
        owner: Option<String>,
        /// Give the new organization the ownerless namespace of that name and the
        /// repositories in it (refused otherwise: an account never inherits repositories by
        /// its name alone).
        #[arg(long)]
        adopt_namespace: bool,
    },
    /// List organizations.
    List,
    /// Delete an organization with its teams and robot accounts (repositories stay, for
    /// administrators alone, and the name stays reserved while they do).
    Delete {
        /// Organization name.
        name: String,
    },
    /// Add a member (or change whether they own the organization).
    AddMember {
        /// Organization.
        org: String,
        /// User.
        user: String,
        /// Make them an owner (every right on the organization's repositories).
        #[arg(long)]
        owner: bool,
    },
    /// Remove a member from the organization and its teams.
    RemoveMember {
        /// Organization.
        org: String,
        /// User.
        user: String,
    },
    /// List members.
    Members {
        /// Organization.
        org: String,
    },
}

/// `berth admin team ...`
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Add {
        /// Organization.
        org: String,
        /// Team name.
        team: String,
    },
    /// Delete a team.
    Delete {
        /// Organization.
        org: String,
        /// Team name.
        team: String,
    },
    /// List an organization's teams with members and roles.
    List {
        /// Organization.
        org: String,
    },
    /// Add a user to a team (and to the organization).
    AddMember {
        /// Organization.
        org: String,
        /// Team name.
        team: String,
        /// User.
        user: String,
    },
    /// Remove a user from a team.
    RemoveMember {
        /// Organization.
        org: String,
        /// Team name.
        team: String,
        /// User.
        user: String,
    },
    /// Give a team a role (read, write or admin) on the whole organization or one repository.
    Grant(GrantArgs),
    /// Take a team's role away.
    Revoke {
        /// Organization.
        org: String,
        /// Team name.
        team: String,
        /// The repository (default: the whole organization).
        #[arg(long)]
        repository: Option<String>,
    },
}

/// `berth admin team grant ...`
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Organization.
    org: String,
    /// Team name.
    team: String,
    /// read (pull), write (pull, push) or admin (pull, push, delete).
    role: String,
    /// One repository of the organization (default: all of them).
    #[arg(long)]
    repository: Option<String>,
}

/// `berth admin repo ...`
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Make a repository public (anyone may pull, even without logging in).
    Public {
        /// Repository name.
        repository: String,
    },
    /// Make a repository private (the default).
    Private {
        /// Repository name.
        repository: String,
    },
}

/// `berth admin token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only this once).
    Create {
        /// The owning user (personal token) or organization (robot account).
        owner: String,
        /// Token name (robots log in as OWNER+NAME).
        name: String,
        /// What it may do: TARGET:ACTIONS, where TARGET is `*`, `namespace/*` or a
        /// repository and ACTIONS is a comma-separated list of pull, push, delete. Repeat
        /// for several rules. Never more than its owner may do.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<u64>,
    },
    /// List tokens (of one owner, or all).
    List {
        /// Owner.
        owner: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Owner.
        owner: String,
        /// Token name.
        name: String,
    },
}

/// Runs an admin command against the database `config` names.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    if config.database.url.is_empty() {
        std::fs::create_dir_all(&config.server.data_dir)
            .with_context(|| format!("cannot create {}", config.server.data_dir.display()))?;
    }
    let meta = berth_registry::server::open_meta(config, config.database.auto_migrate).await?;
    let accounts = berth_registry::server::open_accounts(config, meta).await?;
    let out = execute(&accounts, command, &crate::store_cli::cli_origin()).await?;
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, out.as_bytes())?;
    Ok(())
}

/// Runs one command and returns what to print.
async fn execute(a: &Accounts, command: AdminCommand, by: &Origin) -> anyhow::Result<String> {
    use AdminCommand as C;
    Ok(match command {
        C::User(UserCommand::Add {
            name,
            admin,
            adopt_namespace,
            ..
        }) => {
            let password = read_password()?;
            let authority = Authority::Administrator { adopt_namespace };
            let user = a
                .create_user(&name, &password, admin, authority, by)
                .await?;
            format!(
                "created user {}{}\n",
                user.name,
                if admin { " (administrator)" } else { "" }
            )
        }
        C::User(UserCommand::List) => table(
            &["NAME", "ADMIN", "DISABLED"],
            a.list(AccountKind::User)
                .await?
                .iter()
                .map(|u| vec![u.name.clone(), yes(u.admin), yes(u.disabled)]),
        ),
        C::User(UserCommand::Passwd { name, .. }) => {
            let password = read_password()?;
            a.set_password(&name, &password, by).await?;
            format!("password of {name} changed\n")
        }
        C::User(UserCommand::Promote { name }) => {
            a.set_admin(&name, true, by).await?;
            format!("{name} is an administrator\n")
        }
        C::User(UserCommand::Demote { name }) => {
            a.set_admin(&name, false, by).await?;
            format!("{name} is no longer an administrator\n")
        }
        C::User(UserCommand::Disable { name }) => {
            a.set_disabled(&name, true, by).await?;
            format!("{name} disabled\n")
        }
        C::User(UserCommand::Enable { name }) => {
            a.set_disabled(&name, false, by).await?;
            format!("{name} enabled\n")
        }
        C::User(UserCommand::Delete { name }) => {
            a.account(&name, Some(AccountKind::User)).await?;
            a.delete_account(&name, by).await?;
            format!("deleted user {name}\n")
        }
        C::Org(OrgCommand::Add {
            name,
            owner,
            adopt_namespace,
        }) => {
            let authority = Authority::Administrator { adopt_namespace };
            let org = a.create_org(&name, owner.as_deref(), authority, by).await?;
            format!("created organization {}\n", org.name)
        }
        C::Org(OrgCommand::List) => table(
            &["NAME", "DISABLED"],
            a.list(AccountKind::Org)
                .await?
                .iter()
                .map(|o: &AccountRecord| vec![o.name.clone(), yes(o.disabled)]),
        ),
        C::Org(OrgCommand::Delete { name }) => {
            a.account(&name, Some(AccountKind::Org)).await?;
            a.delete_account(&name, by).await?;
            format!("deleted organization {name}\n")
        }
        C::Org(OrgCommand::AddMember { org, user, owner }) => {
            a.add_member(&org, &user, owner, by).await?;
            format!(
                "{user} is {} of {org}\n",
                if owner { "an owner" } else { "a member" }
            )
        }
        C::Org(OrgCommand::RemoveMember { org, user }) => {
            a.remove_member(&org, &user, by).await?;
            format!("{user} removed from {org}\n")
        }
        C::Org(OrgCommand::Members { org }) => table(
            &["USER", "OWNER"],
            a.members(&org)
                .await?
                .into_iter()
                .map(|m| vec![m.name, yes(m.owner)]),
        ),
        C::Team(TeamCommand::Add { org, team }) => {
            a.create_team(&org, &team, by).await?;
            format!("created team {team} in {org}\n")
        }
        C::Team(TeamCommand::Delete { org, team }) => {
            a.delete_team(&org, &team, by).await?;
            format!("deleted team {team} of {org}\n")
        }
        C::Team(TeamCommand::List { org }) => table(
            &["TEAM", "MEMBERS", "ROLES"],
            a.teams(&org).await?.into_iter().map(|t| {
                let roles = t
                    .grants
                    .iter()
                    .map(|(repo, role)| {
                        let on = if repo.is_empty() {
                            format!("{org}/*")
                        } else {
                            repo.clone()
                        };
                        format!("{}:{on}", role.as_str())
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![t.name, t.members.join(","), roles]
            }),
        ),
        C::Team(TeamCommand::AddMember { org, team, user }) => {
            a.set_team_member(&org, &team, &user, true, by).await?;
            format!("{user} added to {org}/{team}\n")
        }
        C::Team(TeamCommand::RemoveMember { org, team, user }) => {
            a.set_team_member(&org, &team, &user, false, by).await?;
            format!("{user} removed from {org}/{team}\n")
        }
        C::Team(TeamCommand::Grant(g)) => {
            let role = Role::parse(&g.role).with_context(|| {
                format!("unknown role {:?}: expected read, write or admin", g.role)
            })?;
            a.set_team_grant(&g.org, &g.team, g.repository.as_deref(), Some(role), by)
                .await?;
            let on = g.repository.unwrap_or_else(|| format!("{}/*", g.org));
            format!("team {}/{} has {} on {on}\n", g.org, g.team, role.as_str())
        }
        C::Team(TeamCommand::Revoke {
            org,
            team,
            repository,
        }) => {
            a.set_team_grant(&org, &team, repository.as_deref(), None, by)
                .await?;
            let on = repository.unwrap_or_else(|| format!("{org}/*"));
            format!("team {org}/{team} has no role on {on}\n")
        }
        C::Namespace(NamespaceCommand::List) => table(
            &["NAMESPACE", "OWNER", "REPOSITORIES"],
            a.namespaces().await?.into_iter().map(|n| {
                vec![
                    n.name,
                    n.owner.unwrap_or_else(|| "- (administrators)".into()),
                    n.repositories.to_string(),
                ]
            }),
        ),
        C::Repo(RepoCommand::Public { repository }) => {
            a.set_public(&repository, true, by).await?;
            format!("{repository} is public\n")
        }
        C::Repo(RepoCommand::Private { repository }) => {
            a.set_public(&repository, false, by).await?;
            format!("{repository} is private\n")
        }
        C::Token(TokenCommand::Create {
            owner,
            name,
            scopes,
            expires_days,
        }) => {
            let expires = expires_days.map(|d| Duration::from_secs(d.saturating_mul(86_400)));
            let new = a.create_token(&owner, &name, &scopes, expires, by).await?;
            format!(
                "created token {} for {owner}\nlog in with:\n  username: {}\n  password: {}\nThe secret is shown only now; store it safely.\n",
                new.record.name,
                login_name(&new.record),
                new.secret
            )
        }
        C::Token(TokenCommand::List { owner }) => table(
            &[
                "OWNER",
                "NAME",
                "LOGIN",
                "SCOPES",
                "EXPIRES",
                "LAST USED",
                "STATUS",
            ],
            a.tokens(owner.as_deref()).await?.into_iter().map(|t| {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else if t
                    .expires_at
                    .is_some_and(|e| e <= berth_registry::meta::now_ms())
                {
                    "expired"
                } else {
                    "active"
                };
                vec![
                    t.owner_name.clone(),
                    t.name.clone(),
                    login_name(&t),
                    t.scopes.join(" "),
                    t.expires_at.map_or("never".into(), time),
                    t.last_used_at.map_or("never".into(), time),
                    status.into(),
                ]
            }),
        ),
        C::Token(TokenCommand::Revoke { owner, name }) => {
            a.revoke_token(&owner, &name, by).await?;
            format!("revoked token {name} of {owner}\n")
        }
        C::Key(KeyCommand::Retire { kid }) => {
            a.keys().retire(&kid, by).await?;
            format!(
                "retired key {kid}: every replica refuses its tokens and drops it from the JWKS at its next key reload\n"
            )
        }
        C::Key(KeyCommand::Rotate { now }) => {
            let r = a.keys().rotate(by, now).await?;
            let mut out = format!(
                "added key {}: published now, signs from {}\n",
                r.kid,
                format_time(r.signs_from)
            );
            for old in &r.replaced {
                out.push_str(&format!(
                    "key {old} retires: access tokens accepted until {}, refresh tokens until {}\n",
                    format_time(r.access_until),
                    format_time(r.refresh_until)
                ));
            }
            out
        }
        C::Key(KeyCommand::List) => table(
            &[
                "KID",
                "CREATED",
                "STATE",
                "SIGNS FROM",
                "ACCESS UNTIL",
                "REFRESH UNTIL",
            ],
            a.keys().list().await?.into_iter().map(|k| {
                let at = |ms: Option<i64>| ms.map_or("-".into(), format_time);
                vec![
                    k.kid,
                    if k.created_at == 0 {
                        "(key file)".into()
                    } else {
                        format_time(k.created_at)
                    },
                    k.state.as_str().into(),
                    at(Some(k.signs_from).filter(|&t| t > 0)),
                    at(k.access_until),
                    at(k.refresh_until),
                ]
            }),
        ),
    })
}

/// Reads a password from standard input: the first line, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Unix milliseconds as a UTC date and time.
fn time(ms: i64) -> String {
    let (y, m, d, h, mi, _) = berth_registry::auth::jwt::civil_time(ms.div_euclid(1000));
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}")
}

/// Left-aligned columns.
fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
