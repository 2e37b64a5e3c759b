//! The SQL of [`AccountStore`](super::accounts::AccountStore), for SQLite and PostgreSQL.

/// Defines the account query functions over `&mut $conn`.
macro_rules! account_queries {
    ($conn:ty) => {
        use $crate::auth::{Actions, Grants, Role};
        use $crate::meta::accounts::{
            AccountChange, AccountKind, AccountRecord, Created, IdentityRecord, KeyRetired, KeyRotation,
            MemberRecord, NamespaceClaim, NamespaceRecord, PendingLogin, Rotated, SessionRecord,
            SigningKeyRecord, TeamRecord, TokenRecord,
        };
        use $crate::meta::{MetaError, MetaResult, now_ms};

        type AccountRow = (i64, String, String, Option<String>, i64, i64, i64, i64);
        const ACCOUNT_COLUMNS: &str =
            "id, name, kind, password_hash, is_admin, disabled, credential_epoch, created_at";

        fn kind(s: &str, table: &'static str) -> MetaResult<AccountKind> {
            match s {
                "user" => Ok(AccountKind::User),
                "org" => Ok(AccountKind::Org),
                other => Err(MetaError::Corrupt { table, reason: format!("unknown account kind {other:?}") }),
            }
        }

        fn role(s: &str) -> MetaResult<Role> {
            Role::parse(s).ok_or_else(|| MetaError::Corrupt {
                table: "team_grants",
                reason: format!("unknown role {s:?}"),
            })
        }

        fn account_record(r: AccountRow) -> MetaResult<AccountRecord> {
            Ok(AccountRecord {
                id: r.0,
                name: r.1,
                kind: kind(&r.2, "accounts")?,
                password_hash: r.3,
                admin: r.4 != 0,
                disabled: r.5 != 0,
                credential_epoch: r.6,
                created_at: r.7,
            })
        }

        /// Repositories in namespace `ns`: `ns` itself and `ns/...` (a range, not `LIKE`,
        /// since `_` in a name is a `LIKE` wildcard).
        const IN_NAMESPACE: &str = "(name = $1 OR (name >= $1 || '/' AND name < $1 || '0'))";

        pub(in $crate::meta) async fn create_account(
            c: &mut $conn, name: &str, kind: AccountKind, hash: Option<&str>, admin: bool,
            claim: NamespaceClaim,
        ) -> MetaResult<Created> {
            let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1")
                .bind(name).fetch_optional(&mut *c).await?;
            if taken.is_some() {
                return Ok(Created::NameTaken);
            }
            // Every account has its namespace row, so a row here belongs to nobody: repositories
            // pushed before any account had the name, or left by a deleted account.
            let held: Option<i64> = sqlx::query_scalar("SELECT created_at FROM namespaces WHERE name = $1")
                .bind(name).fetch_optional(&mut *c).await?;
            if held.is_some() && claim == NamespaceClaim::New {
                let sql = format!("SELECT COUNT(*) FROM repositories WHERE {IN_NAMESPACE}");
                let repositories: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(name).fetch_one(&mut *c).await?;
                return Ok(Created::NamespaceHeld { repositories });
            }
            let now = now_ms();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO accounts (name, kind, password_hash, is_admin, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(name).bind(kind.as_str()).bind(hash).bind(i64::from(admin)).bind(now)
            .fetch_one(&mut *c).await?;
            sqlx::query(
                "INSERT INTO namespaces (name, owner_id, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET owner_id = excluded.owner_id
                 WHERE namespaces.owner_id IS NULL",
            )
            .bind(name).bind(id).bind(now).execute(c).await?;
            Ok(Created::Account(id))
        }

        pub(in $crate::meta) async fn create_external_user(
            c: &mut $conn, name: &str, provider: &str, subject: &str,
        ) -> MetaResult<Created> {
            let created = create_account(&mut *c, name, AccountKind::User, None, false, NamespaceClaim::New).await?;
            if let Created::Account(id) = created {
                sqlx::query(
                    "INSERT INTO external_identities (account_id, provider, subject, created_at, last_login_at)
                     VALUES ($1, $2, $3, $4, $4)",
                ).bind(id).bind(provider).bind(subject).bind(now_ms()).execute(c).await?;
            }
            Ok(created)
        }

        pub(in $crate::meta) async fn account_by_identity(
            c: &mut $conn, provider: &str, subject: &str,
        ) -> MetaResult<Option<AccountRecord>> {
            let sql = format!(
                "SELECT {} FROM accounts a JOIN external_identities i ON i.account_id = a.id
                 WHERE i.provider = $1 AND i.subject = $2",
                ACCOUNT_COLUMNS.split(", ").map(|col| format!("a.{col}")).collect::<Vec<_>>().join(", ")
            );
            let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(provider).bind(subject).fetch_optional(c).await?;
            row.map(account_record).transpose()
        }

        pub(in $crate::meta) async fn identity(c: &mut $conn, account: i64) -> MetaResult<Option<IdentityRecord>> {
            let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
                "SELECT provider, subject, created_at, last_login_at FROM external_identities WHERE account_id = $1",
            ).bind(account).fetch_optional(c).await?;
            Ok(row.map(|(provider, subject, created_at, last_login_at)| IdentityRecord {
                provider, subject, created_at, last_login_at,
            }))
        }

        pub(in $crate::meta) async fn touch_identity(c: &mut $conn, account: i64) -> MetaResult<bool> {
            Ok(sqlx::query("UPDATE external_identities SET last_login_at = $2 WHERE account_id = $1")
                .bind(account).bind(now_ms()).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn namespaces(c: &mut $conn) -> MetaResult<Vec<NamespaceRecord>> {
            let rows: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
                "SELECT n.name, a.name, n.created_at,
                        (SELECT COUNT(*) FROM repositories r
                         WHERE r.name = n.name OR (r.name >= n.name || '/' AND r.name < n.name || '0'))
                 FROM namespaces n LEFT JOIN accounts a ON a.id = n.owner_id ORDER BY n.name",
            ).fetch_all(c).await?;
            Ok(rows.into_iter().map(|(name, owner, created_at, repositories)| {
                NamespaceRecord { name, owner, repositories, created_at }
            }).collect())
        }

        pub(in $crate::meta) async fn account(c: &mut $conn, name: &str) -> MetaResult<Option<AccountRecord>> {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1");
            let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(c).await?;
            row.map(account_record).transpose()
        }

        pub(in $crate::meta) async fn account_by_id(c: &mut $conn, id: i64) -> MetaResult<Option<AccountRecord>> {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
            let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await?;
            row.map(account_record).transpose()
        }

        pub(in $crate::meta) async fn accounts(c: &mut $conn, k: AccountKind) -> MetaResult<Vec<AccountRecord>> {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE kind = $1 ORDER BY name");
            let rows: Vec<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(k.as_str()).fetch_all(c).await?;
            rows.into_iter().map(account_record).collect()
        }

        pub(in $crate::meta) async fn update_account(c: &mut $conn, id: i64, change: &AccountChange) -> MetaResult<bool> {
            let q = match change {
                AccountChange::Password(hash) => sqlx::query(
                    "UPDATE accounts SET password_hash = $2, credential_epoch = credential_epoch + 1
                     WHERE id = $1 AND kind = 'user'",
                ).bind(id).bind(hash.as_str()),
                AccountChange::Admin(admin) => sqlx::query(
                    "UPDATE accounts SET is_admin = $2 WHERE id = $1 AND kind = 'user'",
                ).bind(id).bind(i64::from(*admin)),
                AccountChange::Disabled(disabled) => sqlx::query(
                    "UPDATE accounts SET disabled = $2, credential_epoch = credential_epoch + $2 WHERE id = $1",
                ).bind(id).bind(i64::from(*disabled)),
            };
            Ok(q.execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn delete_account(c: &mut $conn, id: i64) -> MetaResult<bool> {
            let owned: Vec<String> = sqlx::query_scalar("SELECT name FROM namespaces WHERE owner_id = $1")
                .bind(id).fetch_all(&mut *c).await?;
            for ns in owned {
                let sql = format!("SELECT COUNT(*) FROM repositories WHERE {IN_NAMESPACE}");
                let repositories: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(&ns).fetch_one(&mut *c).await?;
                if repositories == 0 {
                    // Nothing to take over: the name is free again, and so is its visibility
                    // set ahead of a first push.
                    sqlx::query("DELETE FROM namespaces WHERE name = $1").bind(&ns).execute(&mut *c).await?;
                    let sql = format!("DELETE FROM public_repositories WHERE {IN_NAMESPACE}");
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&ns).execute(&mut *c).await?;
                } else {
                    // Kept, owned by nobody: administrators alone reach what is in it.
                    sqlx::query("UPDATE namespaces SET owner_id = NULL WHERE name = $1")
                        .bind(&ns).execute(&mut *c).await?;
                }
            }
            Ok(sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn set_org_member(c: &mut $conn, org: i64, user: i64, owner: Option<bool>) -> MetaResult<bool> {
            match owner {
                Some(owner) => Ok(sqlx::query(
                    "INSERT INTO org_members (org_id, user_id, is_owner) VALUES ($1, $2, $3)
                     ON CONFLICT (org_id, user_id) DO UPDATE SET is_owner = excluded.is_owner
                     WHERE org_members.is_owner <> excluded.is_owner",
                ).bind(org).bind(user).bind(i64::from(owner)).execute(c).await?.rows_affected() == 1),
                None => {
                    sqlx::query(
                        "DELETE FROM team_members WHERE user_id = $2
                         AND team_id IN (SELECT id FROM teams WHERE org_id = $1)",
                    ).bind(org).bind(user).execute(&mut *c).await?;
                    Ok(sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
                        .bind(org).bind(user).execute(c).await?.rows_affected() == 1)
                }
            }
        }

        pub(in $crate::meta) async fn org_members(c: &mut $conn, org: i64) -> MetaResult<Vec<MemberRecord>> {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT a.name, m.is_owner FROM org_members m JOIN accounts a ON a.id = m.user_id
                 WHERE m.org_id = $1 ORDER BY a.name",
            ).bind(org).fetch_all(c).await?;
            Ok(rows.into_iter().map(|(name, owner)| MemberRecord { name, owner: owner != 0 }).collect())
        }

        pub(in $crate::meta) async fn create_team(c: &mut $conn, org: i64, name: &str) -> MetaResult<bool> {
            Ok(sqlx::query(
                "INSERT INTO teams (org_id, name, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, name) DO NOTHING",
            ).bind(org).bind(name).bind(now_ms()).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn delete_team(c: &mut $conn, org: i64, name: &str) -> MetaResult<bool> {
            Ok(sqlx::query("DELETE FROM teams WHERE org_id = $1 AND name = $2")
                .bind(org).bind(name).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn teams(c: &mut $conn, org: i64) -> MetaResult<Vec<TeamRecord>> {
            let teams: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM teams WHERE org_id = $1 ORDER BY name")
                .bind(org).fetch_all(&mut *c).await?;
            let members: Vec<(i64, String)> = sqlx::query_as(
                "SELECT tm.team_id, a.name FROM team_members tm JOIN teams t ON t.id = tm.team_id
                 JOIN accounts a ON a.id = tm.user_id WHERE t.org_id = $1 ORDER BY a.name",
            ).bind(org).fetch_all(&mut *c).await?;
            let grants: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT g.team_id, g.repository, g.role FROM team_grants g JOIN teams t ON t.id = g.team_id
                 WHERE t.org_id = $1 ORDER BY g.repository",
            ).bind(org).fetch_all(c).await?;
            teams.into_iter().map(|(id, name)| {
                Ok(TeamRecord {
                    name,
                    members: members.iter().filter(|m| m.0 == id).map(|m| m.1.clone()).collect(),
                    grants: grants.iter().filter(|g| g.0 == id)
                        .map(|g| Ok((g.1.clone(), role(&g.2)?))).collect::<MetaResult<_>>()?,
                })
            }).collect()
        }

        async fn team_id(c: &mut $conn, org: i64, team: &str) -> MetaResult<Option<i64>> {
            Ok(sqlx::query_scalar("SELECT id FROM teams WHERE org_id = $1 AND name = $2")
                .bind(org).bind(team).fetch_optional(c).await?)
        }

        pub(in $crate::meta) async fn set_team_member(c: &mut $conn, org: i64, team: &str, user: i64, member: bool) -> MetaResult<Option<bool>> {
            let Some(team) = team_id(&mut *c, org, team).await? else { return Ok(None) };
            let q = if member {
                sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            } else {
                sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            };
            Ok(Some(q.bind(team).bind(user).execute(c).await?.rows_affected() == 1))
        }

        pub(in $crate::meta) async fn set_team_grant(c: &mut $conn, org: i64, team: &str, repository: &str, r: Option<Role>) -> MetaResult<Option<bool>> {
            let Some(team) = team_id(&mut *c, org, team).await? else { return Ok(None) };
            let changed = match r {
                Some(r) => sqlx::query(
                    "INSERT INTO team_grants (team_id, repository, role) VALUES ($1, $2, $3)
                     ON CONFLICT (team_id, repository) DO UPDATE SET role = excluded.role",
                ).bind(team).bind(repository).bind(r.as_str()).execute(c).await?,
                None => sqlx::query("DELETE FROM team_grants WHERE team_id = $1 AND repository = $2")
                    .bind(team).bind(repository).execute(c).await?,
            };
            Ok(Some(changed.rows_affected() == 1))
        }

        /// What `account` may do, from records only: the namespaces it owns (never one that
        /// merely bears its name), the namespaces of the organizations it owns, and its teams'
        /// grants inside their organization's namespace.
        pub(in $crate::meta) async fn grants(c: &mut $conn, account: i64) -> MetaResult<Grants> {
            let mut g = Grants::default();
            let Some(me) = account_by_id(&mut *c, account).await? else { return Ok(g) };
            if me.disabled {
                return Ok(g);
            }
            g.admin = me.admin;
            let own: Vec<String> = sqlx::query_scalar("SELECT name FROM namespaces WHERE owner_id = $1")
                .bind(account).fetch_all(&mut *c).await?;
            for ns in own {
                g.grant_namespace(&ns, Actions::ALL);
            }
            if me.kind == AccountKind::Org {
                return Ok(g);
            }
            let owned: Vec<String> = sqlx::query_scalar(
                "SELECT n.name FROM org_members m JOIN namespaces n ON n.owner_id = m.org_id
                 WHERE m.user_id = $1 AND m.is_owner <> 0",
            ).bind(account).fetch_all(&mut *c).await?;
            for ns in owned {
                g.grant_namespace(&ns, Actions::ALL);
            }
            let team_grants: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT n.name, g.repository, g.role FROM team_members tm
                 JOIN teams t ON t.id = tm.team_id
                 JOIN team_grants g ON g.team_id = t.id
                 JOIN namespaces n ON n.owner_id = t.org_id
                 WHERE tm.user_id = $1",
            ).bind(account).fetch_all(c).await?;
            for (ns, repository, r) in team_grants {
                let actions = role(&r)?.actions();
                if repository.is_empty() {
                    g.grant_namespace(&ns, actions);
                } else if $crate::auth::access::namespace_of(&repository) == ns {
                    // A grant only ever reaches into its own organization's namespace.
                    g.grant_repository(&repository, actions);
                }
            }
            Ok(g)
        }

        pub(in $crate::meta) async fn set_public(c: &mut $conn, repository: &str, public: bool) -> MetaResult<bool> {
            let q = if public {
                sqlx::query("INSERT INTO public_repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(repository).bind(now_ms())
            } else {
                sqlx::query("DELETE FROM public_repositories WHERE name = $1").bind(repository)
            };
            Ok(q.execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn is_public(c: &mut $conn, repository: &str) -> MetaResult<bool> {
            let found: Option<String> = sqlx::query_scalar("SELECT name FROM public_repositories WHERE name = $1")
                .bind(repository).fetch_optional(c).await?;
            Ok(found.is_some())
        }

        pub(in $crate::meta) async fn public_between(c: &mut $conn, after: &str, upto: Option<&str>) -> MetaResult<Vec<String>> {
            Ok(sqlx::query_scalar(
                "SELECT name FROM public_repositories WHERE name > $1 AND ($2 IS NULL OR name <= $2) ORDER BY name",
            ).bind(after).bind(upto).fetch_all(c).await?)
        }

        pub(in $crate::meta) async fn public_among(c: &mut $conn, names: &[String]) -> MetaResult<Vec<String>> {
            let mut public = Vec::new();
            // Bounded IN lists: both databases cap the number of bind parameters.
            for chunk in names.chunks(500) {
                let sql = format!(
                    "SELECT name FROM public_repositories WHERE name IN ({}) ORDER BY name",
                    $crate::meta::browse::placeholders(1, chunk.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
                for n in chunk {
                    q = q.bind(n);
                }
                public.extend(q.fetch_all(&mut *c).await?);
            }
            public.sort();
            Ok(public)
        }

        type TokenRow = (i64, i64, String, String, String, String, i64, Option<i64>, Option<i64>, Option<i64>);
        const TOKEN_SELECT: &str =
            "SELECT t.id, t.owner_id, a.name, a.kind, t.name, t.scopes, t.created_at, t.expires_at,
                    t.last_used_at, t.revoked_at
             FROM access_tokens t JOIN accounts a ON a.id = t.owner_id";

        fn token_record(r: TokenRow) -> MetaResult<TokenRecord> {
            let scopes: Vec<String> = serde_json::from_str(&r.5).map_err(|e| MetaError::Corrupt {
                table: "access_tokens",
                reason: e.to_string(),
            })?;
            Ok(TokenRecord {
                id: r.0,
                owner_id: r.1,
                owner_name: r.2,
                owner_kind: kind(&r.3, "access_tokens")?,
                name: r.4,
                scopes,
                created_at: r.6,
                expires_at: r.7,
                last_used_at: r.8,
                revoked_at: r.9,
            })
        }

        pub(in $crate::meta) async fn create_token(
            c: &mut $conn, owner: i64, name: &str, hash: &[u8], scopes: &[String], expires_at: Option<i64>,
        ) -> MetaResult<Option<i64>> {
            let scopes = serde_json::to_string(scopes).map_err(|e| MetaError::Corrupt {
                table: "access_tokens",
                reason: e.to_string(),
            })?;
            Ok(sqlx::query_scalar(
                "INSERT INTO access_tokens (owner_id, name, secret_hash, scopes, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner_id, name) DO NOTHING RETURNING id",
            ).bind(owner).bind(name).bind(hash).bind(scopes).bind(now_ms()).bind(expires_at)
            .fetch_optional(c).await?)
        }

        pub(in $crate::meta) async fn token_by_hash(c: &mut $conn, hash: &[u8]) -> MetaResult<Option<TokenRecord>> {
            let sql = format!("{TOKEN_SELECT} WHERE t.secret_hash = $1");
            let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(c).await?;
            row.map(token_record).transpose()
        }

        pub(in $crate::meta) async fn token_by_id(c: &mut $conn, id: i64) -> MetaResult<Option<TokenRecord>> {
            let sql = format!("{TOKEN_SELECT} WHERE t.id = $1");
            let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await?;
            row.map(token_record).transpose()
        }

        pub(in $crate::meta) async fn tokens(c: &mut $conn, owner: Option<i64>) -> MetaResult<Vec<TokenRecord>> {
            let sql = format!("{TOKEN_SELECT} WHERE ($1 IS NULL OR t.owner_id = $1) ORDER BY a.name, t.name");
            let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(owner).fetch_all(c).await?;
            rows.into_iter().map(token_record).collect()
        }

        pub(in $crate::meta) async fn revoke_token(c: &mut $conn, owner: i64, name: &str) -> MetaResult<bool> {
            Ok(sqlx::query(
                "UPDATE access_tokens SET revoked_at = $3 WHERE owner_id = $1 AND name = $2 AND revoked_at IS NULL",
            ).bind(owner).bind(name).bind(now_ms()).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn touch_token(c: &mut $conn, id: i64) -> MetaResult<()> {
            let now = now_ms();
            sqlx::query(
                "UPDATE access_tokens SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            ).bind(id).bind(now).bind(now - 60_000).execute(c).await?;
            Ok(())
        }

        pub(in $crate::meta) async fn create_session(c: &mut $conn, hash: &[u8], s: &SessionRecord) -> MetaResult<()> {
            let now = now_ms();
            sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1").bind(now).execute(&mut *c).await?;
            sqlx::query(
                "INSERT INTO ui_sessions (secret_hash, account_id, credential_epoch, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            ).bind(hash).bind(s.account_id).bind(s.credential_epoch).bind(now).bind(s.expires_at).execute(c).await?;
            Ok(())
        }

        pub(in $crate::meta) async fn session(c: &mut $conn, hash: &[u8]) -> MetaResult<Option<SessionRecord>> {
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT account_id, credential_epoch, expires_at FROM ui_sessions
                 WHERE secret_hash = $1 AND expires_at > $2",
            ).bind(hash).bind(now_ms()).fetch_optional(c).await?;
            Ok(row.map(|(account_id, credential_epoch, expires_at)| SessionRecord { account_id, credential_epoch, expires_at }))
        }

        pub(in $crate::meta) async fn delete_session(c: &mut $conn, hash: &[u8]) -> MetaResult<bool> {
            Ok(sqlx::query("DELETE FROM ui_sessions WHERE secret_hash = $1").bind(hash).execute(c).await?.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn pending_logins(c: &mut $conn, now: i64, client: &str) -> MetaResult<(u64, u64)> {
            let (all, mine): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE client = $2) FROM oidc_logins WHERE expires_at > $1",
            ).bind(now).bind(client).fetch_one(c).await?;
            Ok((u64::try_from(all).unwrap_or(0), u64::try_from(mine).unwrap_or(0)))
        }

        pub(in $crate::meta) async fn create_pending_login(c: &mut $conn, hash: &[u8], client: &str, l: &PendingLogin, expires_at: i64) -> MetaResult<()> {
            let now = now_ms();
            sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1").bind(now).execute(&mut *c).await?;
            sqlx::query(
                "INSERT INTO oidc_logins (id_hash, state, nonce, verifier, next, redirect, created_at, expires_at, client)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            ).bind(hash).bind(&l.state).bind(&l.nonce).bind(&l.verifier).bind(&l.next).bind(&l.redirect)
                .bind(now).bind(expires_at).bind(client).execute(c).await?;
            Ok(())
        }

        pub(in $crate::meta) async fn take_pending_login(c: &mut $conn, hash: &[u8]) -> MetaResult<Option<PendingLogin>> {
            let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(
                "DELETE FROM oidc_logins WHERE id_hash = $1
                 RETURNING state, nonce, verifier, next, redirect, expires_at",
            ).bind(hash).fetch_optional(c).await?;
            let now = now_ms();
            Ok(row.filter(|r| r.5 > now).map(|(state, nonce, verifier, next, redirect, _)| PendingLogin {
                state, nonce, verifier, next, redirect,
            }))
        }

        type KeyRow = (i64, String, String, i64, i64, Option<i64>, Option<i64>);

        pub(in $crate::meta) async fn ensure_signing_key(c: &mut $conn, kid: &str, pem: &str) -> MetaResult<()> {
            let any: Option<i64> = sqlx::query_scalar("SELECT slot FROM signing_keys LIMIT 1")
                .fetch_optional(&mut *c).await?;
            if any.is_none() {
                // Replicas starting together race here: slot 1 lets exactly one key in.
                sqlx::query(
                    "INSERT INTO signing_keys (slot, kid, private_pem, created_at, signs_from)
                     VALUES (1, $1, $2, $3, 0) ON CONFLICT (slot) DO NOTHING",
                ).bind(kid).bind(pem).bind(now_ms()).execute(c).await?;
            }
            Ok(())
        }

        pub(in $crate::meta) async fn signing_keys(c: &mut $conn) -> MetaResult<Vec<SigningKeyRecord>> {
            let rows: Vec<KeyRow> = sqlx::query_as(
                "SELECT slot, kid, private_pem, created_at, signs_from, access_until, refresh_until
                 FROM signing_keys ORDER BY slot",
            ).fetch_all(c).await?;
            Ok(rows.into_iter().map(|r| SigningKeyRecord {
                slot: r.0, kid: r.1, private_pem: r.2, created_at: r.3, signs_from: r.4,
                access_until: r.5, refresh_until: r.6,
            }).collect())
        }

        pub(in $crate::meta) async fn rotate_signing_key(c: &mut $conn, r: &KeyRotation) -> MetaResult<Rotated> {
            let pending: Option<(String, i64)> = sqlx::query_as(
                "SELECT kid, signs_from FROM signing_keys WHERE signs_from > $1
                 ORDER BY signs_from DESC, slot DESC LIMIT 1",
            ).bind(now_ms()).fetch_optional(&mut *c).await?;
            if let Some((kid, signs_from)) = pending {
                return Ok(Rotated::Pending { kid, signs_from });
            }
            let replaced: Vec<String> = sqlx::query_scalar(
                "SELECT kid FROM signing_keys WHERE access_until IS NULL ORDER BY slot",
            ).fetch_all(&mut *c).await?;
            sqlx::query(
                "UPDATE signing_keys SET access_until = $1, refresh_until = $2 WHERE access_until IS NULL",
            ).bind(r.access_until).bind(r.refresh_until).execute(&mut *c).await?;
            let slot: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(slot), 0) + 1 FROM signing_keys")
                .fetch_one(&mut *c).await?;
            sqlx::query(
                "INSERT INTO signing_keys (slot, kid, private_pem, created_at, signs_from)
                 VALUES ($1, $2, $3, $4, $5)",
            ).bind(slot).bind(&r.kid).bind(&r.private_pem).bind(now_ms()).bind(r.signs_from)
            .execute(c).await?;
            Ok(Rotated::Rotated { replaced })
        }

        pub(in $crate::meta) async fn retire_signing_key(c: &mut $conn, kid: &str) -> MetaResult<KeyRetired> {
            let keys: Vec<(String, i64)> = sqlx::query_as(
                "SELECT kid, signs_from FROM signing_keys ORDER BY signs_from, slot",
            ).fetch_all(&mut *c).await?;
            let now = now_ms();
            let Some(&(_, signs_from)) = keys.iter().find(|(k, _)| k == kid) else {
                return Ok(KeyRetired::Unknown);
            };
            if signs_from > now {
                return Ok(KeyRetired::Next { signs_from });
            }
            // The key that signs: of those whose time has come, the one that came last (as
            // auth::keys::KeyRing::signing chooses).
            if keys.iter().rev().find(|(_, from)| *from <= now).is_some_and(|(k, _)| k == kid) {
                return Ok(KeyRetired::Signing);
            }
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid).execute(c).await?;
            Ok(KeyRetired::Retired)
        }

        pub(in $crate::meta) async fn delete_retired_keys(c: &mut $conn, now: i64) -> MetaResult<u64> {
            // A key not yet replaced has NULL times and stays; so does the newest key always.
            Ok(sqlx::query("DELETE FROM signing_keys WHERE access_until <= $1 AND refresh_until <= $1")
                .bind(now).execute(c).await?.rows_affected())
        }
    };
}

/// Implements `AccountStore` for `$store`, whose `account_read` and `account_write` run a
/// closure over `&mut $conn` on a read connection and in a write transaction.
macro_rules! impl_account_store {
    ($store:ty, $conn:ty) => {
        mod aq {
            $crate::meta::account_sql::account_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::accounts::AccountStore for $store {
            async fn create_account(&self, name: &str, kind: $crate::meta::accounts::AccountKind, password_hash: Option<&str>, admin: bool, claim: $crate::meta::accounts::NamespaceClaim, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::accounts::Created> {
                let hash = password_hash.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, hash, event], |c| $crate::meta::account_sql::audited!(c, event, aq::create_account(c, &name, kind, hash.as_deref(), admin, claim)))
            }
            async fn create_external_user(&self, name: &str, provider: &str, subject: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::accounts::Created> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, provider, subject, event], |c| $crate::meta::account_sql::audited!(c, event, aq::create_external_user(c, &name, &provider, &subject)))
            }
            async fn account_by_identity(&self, provider: &str, subject: &str) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::AccountRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [provider, subject], |c| aq::account_by_identity(c, &provider, &subject))
            }
            async fn identity(&self, account: i64) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::IdentityRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::identity(c, account))
            }
            async fn touch_identity(&self, account: i64, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [event], |c| $crate::meta::account_sql::audited!(c, event, aq::touch_identity(c, account)))
            }
            async fn namespaces(&self) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::NamespaceRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::namespaces(c))
            }
            async fn account(&self, name: &str) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::AccountRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [name], |c| aq::account(c, &name))
            }
            async fn account_by_id(&self, id: i64) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::AccountRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::account_by_id(c, id))
            }
            async fn accounts(&self, kind: $crate::meta::accounts::AccountKind) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::AccountRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::accounts(c, kind))
            }
            async fn update_account(&self, id: i64, change: $crate::meta::accounts::AccountChange, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [change, event], |c| $crate::meta::account_sql::audited!(c, event, aq::update_account(c, id, &change)))
            }
            async fn delete_account(&self, id: i64, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [event], |c| $crate::meta::account_sql::audited!(c, event, aq::delete_account(c, id)))
            }
            async fn set_org_member(&self, org: i64, user: i64, owner: Option<bool>, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [event], |c| $crate::meta::account_sql::audited!(c, event, aq::set_org_member(c, org, user, owner)))
            }
            async fn org_members(&self, org: i64) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::MemberRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::org_members(c, org))
            }
            async fn create_team(&self, org: i64, name: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, event], |c| $crate::meta::account_sql::audited!(c, event, aq::create_team(c, org, &name)))
            }
            async fn delete_team(&self, org: i64, name: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, event], |c| $crate::meta::account_sql::audited!(c, event, aq::delete_team(c, org, &name)))
            }
            async fn teams(&self, org: i64) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::TeamRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::teams(c, org))
            }
            async fn set_team_member(&self, org: i64, team: &str, user: i64, member: bool, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<bool>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [team, event], |c| $crate::meta::account_sql::audited!(c, event, aq::set_team_member(c, org, &team, user, member)))
            }
            async fn set_team_grant(&self, org: i64, team: &str, repository: &str, role: Option<$crate::auth::Role>, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<bool>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [team, repository, event], |c| $crate::meta::account_sql::audited!(c, event, aq::set_team_grant(c, org, &team, &repository, role)))
            }
            async fn grants(&self, account: i64) -> $crate::meta::MetaResult<$crate::auth::Grants> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::grants(c, account))
            }
            async fn set_public(&self, repository: &str, public: bool, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [repository, event], |c| $crate::meta::account_sql::audited!(c, event, aq::set_public(c, &repository, public)))
            }
            async fn is_public(&self, repository: &str) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repository], |c| aq::is_public(c, &repository))
            }
            async fn public_between(&self, after: &str, upto: Option<&str>) -> $crate::meta::MetaResult<Vec<String>> {
                let upto = upto.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [after, upto], |c| aq::public_between(c, &after, upto.as_deref()))
            }
            async fn public_among(&self, names: &[String]) -> $crate::meta::MetaResult<Vec<String>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [names], |c| aq::public_among(c, &names))
            }
            async fn create_token(&self, owner: i64, name: &str, secret_hash: &[u8], scopes: &[String], expires_at: Option<i64>, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<i64>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, secret_hash, scopes, event], |c| $crate::meta::account_sql::audited!(c, event, aq::create_token(c, owner, &name, &secret_hash, &scopes, expires_at)))
            }
            async fn token_by_hash(&self, secret_hash: &[u8]) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::TokenRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [secret_hash], |c| aq::token_by_hash(c, &secret_hash))
            }
            async fn token_by_id(&self, id: i64) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::TokenRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::token_by_id(c, id))
            }
            async fn tokens(&self, owner: Option<i64>) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::TokenRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::tokens(c, owner))
            }
            async fn revoke_token(&self, owner: i64, name: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [name, event], |c| $crate::meta::account_sql::audited!(c, event, aq::revoke_token(c, owner, &name)))
            }
            async fn touch_token(&self, id: i64) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| aq::touch_token(c, id))
            }
            async fn create_session(&self, secret_hash: &[u8], session: $crate::meta::accounts::SessionRecord) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [secret_hash, session], |c| aq::create_session(c, &secret_hash, &session))
            }
            async fn session(&self, secret_hash: &[u8]) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::SessionRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [secret_hash], |c| aq::session(c, &secret_hash))
            }
            async fn delete_session(&self, secret_hash: &[u8]) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [secret_hash], |c| aq::delete_session(c, &secret_hash))
            }
            async fn pending_logins(&self, now: i64, client: &str) -> $crate::meta::MetaResult<(u64, u64)> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [client], |c| aq::pending_logins(c, now, &client))
            }
            async fn create_pending_login(&self, id_hash: &[u8], client: &str, login: $crate::meta::accounts::PendingLogin, expires_at: i64) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [id_hash, client, login], |c| aq::create_pending_login(c, &id_hash, &client, &login, expires_at))
            }
            async fn take_pending_login(&self, id_hash: &[u8]) -> $crate::meta::MetaResult<Option<$crate::meta::accounts::PendingLogin>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [id_hash], |c| aq::take_pending_login(c, &id_hash))
            }
            async fn ensure_signing_key(&self, candidate: (String, String)) -> $crate::meta::MetaResult<()> {
                let (kid, pem) = candidate;
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [kid, pem], |c| aq::ensure_signing_key(c, &kid, &pem))
            }
            async fn signing_keys(&self) -> $crate::meta::MetaResult<Vec<$crate::meta::accounts::SigningKeyRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| aq::signing_keys(c))
            }
            async fn rotate_signing_key(&self, rotation: $crate::meta::accounts::KeyRotation, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::accounts::Rotated> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [rotation, event], |c| $crate::meta::account_sql::audited!(c, event, aq::rotate_signing_key(c, &rotation)))
            }
            async fn retire_signing_key(&self, kid: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::accounts::KeyRetired> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [kid, event], |c| $crate::meta::account_sql::audited!(c, event, aq::retire_signing_key(c, &kid)))
            }
            async fn delete_retired_keys(&self, now: i64) -> $crate::meta::MetaResult<u64> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| aq::delete_retired_keys(c, now))
            }
        }
    };
}

/// Runs `$call` through `$self.$how` (a read connection or a write transaction over
/// `&mut $conn`) with owned copies of the listed borrowed arguments, cloned for each attempt
/// (PostgreSQL retries conflicting transactions).
macro_rules! run_owned {
    ($conn:ty; $self:ident . $how:ident, [$($v:ident),*], |$c:ident| $call:expr) => {{
        $(let $v = $v.to_owned();)*
        $self
            .$how(move |$c: &mut $conn| -> futures_util::future::BoxFuture<'_, _> {
                $(let $v = $v.clone();)*
                Box::pin(async move { $call.await })
            })
            .await
    }};
}

/// Runs `$call` (an account write over `$c`) and, if it changed anything, records `$event`
/// in the same transaction.
macro_rules! audited {
    ($c:ident, $event:ident, $call:expr) => {
        async {
            let result = $call.await?;
            if $crate::meta::account_sql::Changed::changed(&result) {
                q::record_event($c, &$event).await?;
            }
            Ok::<_, $crate::meta::MetaError>(result)
        }
    };
}

/// Whether an account write's result says it changed something.
pub(crate) trait Changed {
    /// True when a row was written.
    fn changed(&self) -> bool;
}

impl Changed for bool {
    fn changed(&self) -> bool {
        *self
    }
}

impl Changed for Option<i64> {
    fn changed(&self) -> bool {
        self.is_some()
    }
}

impl Changed for super::accounts::Rotated {
    fn changed(&self) -> bool {
        matches!(self, super::accounts::Rotated::Rotated { .. })
    }
}

impl Changed for super::accounts::KeyRetired {
    fn changed(&self) -> bool {
        *self == super::accounts::KeyRetired::Retired
    }
}

impl Changed for super::accounts::Created {
    fn changed(&self) -> bool {
        matches!(self, super::accounts::Created::Account(_))
    }
}

impl Changed for Option<bool> {
    fn changed(&self) -> bool {
        *self == Some(true)
    }
}

pub(crate) use account_queries;
pub(crate) use audited;
pub(crate) use impl_account_store;
pub(crate) use run_owned;
