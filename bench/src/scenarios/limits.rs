//! The limits the drain (2) and end-to-end (3) scenarios run under
//! (`--limits`, docs/limits.md "Cost"): none, one global bucket, or 1,000
//! keyed buckets, each never reached (concurrency far above the load) and
//! applied to the bench's `echo` through the limit's `tasks` list, so the
//! submissions are the same plain requests. Every variant listed runs in
//! each run, so their ratio comes from one run on one machine.

use anyhow::Result;
use clap::ValueEnum;
use sqlx::PgPool;
use yadtq_core::names::{LimitName, TaskName, Tenant};
use yadtq_core::store::limits::{self, KeyPointer, LimitSpec};

/// Buckets of the keyed variant: the bench's `echo(i)` carries
/// `kwargs.c = i % BUCKETS` ([`crate::client::echo_body`]).
pub const BUCKETS: usize = 1000;

/// Concurrency of the variants' limits: far above any load of the bench.
const NEVER_REACHED: i32 = 1_000_000;

/// A `--limits` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LimitVariant {
    /// No limit (the scenarios as they always ran).
    None,
    /// One limit without a key: a single bucket every task takes.
    Global,
    /// One limit keyed by `/kwargs/c`: 1,000 buckets.
    Keyed,
}

impl LimitVariant {
    /// The suffix of the scenario's labels (empty for [`LimitVariant::None`],
    /// so the default report keeps its rows).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Global => " [limit: 1 global bucket, never reached]",
            Self::Keyed => " [limit: 1,000 keyed buckets, never reached]",
        }
    }

    /// Declares the variant's limit in the stack's database (the default
    /// tenant, the bench's API key's), through `store::limits::put`, with its
    /// buckets created up front (a bucket is created by the first task that
    /// takes it; the measured runs should not pay that).
    pub async fn declare(self, db: &PgPool) -> Result<()> {
        let key = match self {
            Self::None => return Ok(()),
            Self::Global => None,
            Self::Keyed => Some(KeyPointer::parse("/kwargs/c").expect("a valid pointer")),
        };
        let name = LimitName::parse("bench").expect("a valid limit name");
        let spec = LimitSpec {
            concurrency: Some(NEVER_REACHED),
            rate: None,
            key: key.clone(),
            tasks: vec![TaskName::parse("echo", 64).expect("a valid task name")],
        };
        let tenant = Tenant::default_tenant();
        limits::put(db, &tenant, &name, &spec).await?;
        let buckets: Vec<String> = match key {
            None => vec![limits::ALL_BUCKET.to_string()],
            Some(_) => (0..BUCKETS).map(|c| c.to_string()).collect(),
        };
        sqlx::query(
            "INSERT INTO limit_buckets (tenant, limit_name, bucket) SELECT $1, $2, b FROM UNNEST($3::text[]) AS u(b)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(name.as_str())
        .bind(&buckets)
        .execute(db)
        .await?;
        Ok(())
    }
}
