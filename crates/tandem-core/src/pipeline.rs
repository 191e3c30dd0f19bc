//! `Core`: route a request (tier alias, pace header, `auto` router, session memory), try its targets in order
//! with retries, circuit breakers and fallbacks, and hand back a metered answer plus how it was routed.
//!
//! A target that fails before the first token is skipped without the client seeing it, when another can serve.
//! Once a token has reached the client, a failure ends the stream with an error event (no silent restarts).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use std::sync::RwLock;

use futures::StreamExt;
use futures::future::BoxFuture;
use tandem_budget::{Estimate, Ledger, Prices, Scope};
use tandem_policy::{Action, Policy, Principal, Query};
use tandem_protocol::{
    ChatRequest, ChatResponse, ErrorKind, FinishReason, Part, Role, StreamEvent, Usage,
};
use tandem_providers::{EventStream, Provider};
use tandem_router::{Router, RouterConfig, SessionFacts};
use tandem_store::{Outcome, RequestRecord, Store};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::audit::{PolicyCheck, Trail};
use crate::budgets::{Budgets, Hold};
use crate::recorder::Recorder;

use crate::dlp::{self, DlpConfig, DlpStream, Findings};
use crate::meter::MeteredStream;
use crate::route::{Attempt, RouteInfo, Target, Tier, TierConfig};
use crate::session::Sessions;
use crate::{Error, Exchange, Result, elapsed_ms, now_ms, reasoning};

/// A plain model alias: a client name bound to one provider and upstream model (no tier, no fallbacks).
#[derive(Clone, Debug)]
pub struct Alias {
    /// The name clients send.
    pub name: String,
    /// The provider that serves it.
    pub provider: String,
    /// The upstream model name.
    pub model: String,
}

/// Everything `Core` needs besides the providers and the store.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Tiers, in config order.
    pub tiers: Vec<TierConfig>,
    /// Plain model aliases.
    pub aliases: Vec<Alias>,
    /// The `auto` router; `None` when no tiers are configured.
    pub router: Option<RouterConfig>,
    /// How long a session's routing memory lives without requests.
    pub session_ttl: Duration,
    /// Most sessions remembered.
    pub max_sessions: usize,
    /// The Cedar policy (the embedded allow-all default when none is configured).
    pub policy: Arc<Policy>,
    /// Budgets and rate limits (a ledger without rules admits everything).
    pub ledger: Ledger,
    /// Counters shared by several replicas; `None` counts in this process's `ledger` alone.
    pub shared_counters: Option<crate::budgets::SharedCounters>,
    /// Prices per backend, for cost budgets and records.
    pub prices: Prices,
    /// Data loss prevention; `None` turns it off.
    pub dlp: Option<DlpConfig>,
    /// The audit ledger every exchange is appended to; `None` turns auditing off.
    pub audit: Option<Arc<tandem_audit::Ledger>>,
}

/// The pace a client asked for with the `x-tandem-pace` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Let the router decide.
    Auto,
    /// This tier.
    Tier(String),
}

/// Routing hints from the transport, beyond the request body.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// `x-tandem-pace`.
    pub pace: Option<Pace>,
    /// The client reported a failed check (`x-tandem-signal: check-failed`).
    pub failure_signal: bool,
    /// Who is asking; `None` is the anonymous user.
    pub principal: Option<Principal>,
}

/// The outcome of [`Core::attempt`] that answered.
struct Won<T> {
    value: T,
    target: Arc<Target>,
    info: RouteInfo,
    reservation: Option<Hold>,
}

/// Where a request goes: targets in attempt order and the routing explanation so far.
struct Plan {
    targets: Vec<Arc<Target>>,
    info: RouteInfo,
}

/// The pipeline. Shared by all requests.
pub struct Core {
    providers: Vec<Arc<dyn Provider>>,
    by_name: HashMap<String, usize>,
    tiers: Vec<Tier>,
    tier_by_name: HashMap<String, usize>,
    tier_by_alias: HashMap<String, usize>,
    aliases: HashMap<String, (usize, String)>,
    model_names: Vec<String>,
    router: Option<Router>,
    deep_tier: Option<String>,
    sessions: Arc<Sessions>,
    store: Arc<Store>,
    policy: RwLock<Arc<Policy>>,
    budgets: Arc<Budgets>,
    prices: Arc<Prices>,
    recorder: Arc<Recorder>,
    dlp: Option<DlpConfig>,
    dlp_clean: dlp::CleanParts,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("providers", &self.by_name.keys().collect::<Vec<_>>())
            .field("tiers", &self.tier_by_name.keys().collect::<Vec<_>>())
            .field("models", &self.model_names)
            .finish()
    }
}

impl Core {
    /// Build the pipeline. Without tiers, the first provider serves names that match nothing else.
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        config: CoreConfig,
        store: Arc<Store>,
    ) -> Result<Core> {
        if providers.is_empty() {
            return Err(Error::NoProviders);
        }
        crate::metrics::allow_models(
            config
                .tiers
                .iter()
                .flat_map(|tier| tier.targets.iter().map(|t| t.model.as_str()))
                .chain(config.aliases.iter().map(|a| a.model.as_str())),
        );
        let by_name: HashMap<String, usize> = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name().to_owned(), i))
            .collect();
        let provider = |name: &str| -> Result<Arc<dyn Provider>> {
            by_name
                .get(name)
                .map(|&i| Arc::clone(&providers[i]))
                .ok_or_else(|| Error::UnknownProvider(name.to_owned()))
        };
        let prices = Arc::new(config.prices);
        let mut model_names = Vec::new();
        let mut tiers = Vec::with_capacity(config.tiers.len());
        let mut tier_by_name = HashMap::new();
        let mut tier_by_alias = HashMap::new();
        for (index, tier) in config.tiers.iter().enumerate() {
            let mut targets = Vec::with_capacity(tier.targets.len());
            for target in &tier.targets {
                targets.push(Arc::new(Target::new(provider(&target.provider)?, target)));
            }
            tier_by_name.insert(tier.name.clone(), index);
            for alias in &tier.aliases {
                tier_by_alias.insert(alias.clone(), index);
                model_names.push(alias.clone());
            }
            tiers.push(Tier {
                name: tier.name.clone(),
                targets,
                fallback: None,
                turn: AtomicU64::new(0),
            });
        }
        for (index, tier) in config.tiers.iter().enumerate() {
            if let Some(fallback) = &tier.fallback_tier {
                let Some(&to) = tier_by_name.get(fallback) else {
                    return Err(Error::UnknownTier(fallback.clone()));
                };
                tiers[index].fallback = Some(to);
            }
        }
        let mut aliases = HashMap::new();
        for alias in &config.aliases {
            let Some(&index) = by_name.get(&alias.provider) else {
                return Err(Error::UnknownProvider(alias.provider.clone()));
            };
            aliases.insert(alias.name.clone(), (index, alias.model.clone()));
            model_names.push(alias.name.clone());
        }
        let (router, deep_tier) = match config.router {
            Some(router_config) => {
                let live = router_config.live_tier.clone();
                let deep = router_config.deep_tier.clone();
                for name in [&live, &deep] {
                    if !tier_by_name.contains_key(name) {
                        return Err(Error::UnknownTier(name.clone()));
                    }
                }
                let router = Router::new(router_config).map_err(Error::Router)?;
                model_names.push("auto".to_owned());
                (Some(router), Some(deep))
            }
            None => (None, None),
        };
        model_names.extend(providers.iter().map(|p| format!("{}/*", p.name())));
        Ok(Core {
            providers,
            by_name,
            tiers,
            tier_by_name,
            tier_by_alias,
            aliases,
            model_names,
            router,
            deep_tier,
            sessions: Arc::new(Sessions::new(config.session_ttl, config.max_sessions)),
            policy: RwLock::new(config.policy),
            budgets: Arc::new(Budgets::new(config.ledger, config.shared_counters)),
            recorder: Arc::new(Recorder::new(
                Arc::clone(&store),
                Arc::clone(&prices),
                config.audit,
            )),
            store,
            prices,
            dlp: config.dlp,
            dlp_clean: dlp::CleanParts::default(),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replace the policy (after it parsed and validated); requests already admitted are not affected.
    pub fn set_policy(&self, policy: Arc<Policy>) {
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    /// The `gen_ai.provider.name` of a configured provider's wire API (`openai`, `anthropic`), for traces.
    pub fn provider_api_name(&self, provider: &str) -> &'static str {
        self.by_name
            .get(provider)
            .map_or("", |&i| self.providers[i].api_name())
    }

    /// The budget ledger (for the admin API and persistence).
    pub fn ledger(&self) -> &Ledger {
        self.budgets.ledger()
    }

    /// Check policy for a planned request: tools first, then each target (targets the principal may not
    /// use are dropped). Deny-by-default; every deny names its policy. Returns what the budgets must hold:
    /// the principal's scopes and the estimate, or `None` when no budget or limit is configured.
    fn admit(
        &self,
        req: &ChatRequest,
        hints: &Hints,
        api: &str,
        plan: &mut Plan,
    ) -> Result<Option<(Vec<Scope>, Estimate)>> {
        let principal = hints.principal.clone().unwrap_or_else(|| Principal {
            user: "anonymous".to_owned(),
            groups: Vec::new(),
            project: None,
            key_id: None,
        });
        let policy = self.policy();
        let context_tokens = estimate_prompt_tokens(req);
        let query = |action: Action| Query {
            principal: principal.clone(),
            action,
            context_tokens,
            tools: u32::try_from(req.tools.len()).unwrap_or(u32::MAX),
            api: api.to_owned(),
            stream: req.stream,
        };
        for tool in &req.tools {
            let decision = policy.evaluate(&query(Action::UseTool {
                name: tool.name.clone(),
            }));
            plan.info.policy.push(PolicyCheck {
                action: "use_tool",
                resource: tool.name.clone(),
                allowed: decision.allowed,
                reason: decision.reason.clone(),
            });
            if !decision.allowed {
                return Err(Error::Denied(decision.reason));
            }
        }
        let mut first_denial = None;
        let mut allowed = Vec::with_capacity(plan.targets.len());
        for target in plan.targets.drain(..) {
            let decision = policy.evaluate(&query(Action::UseModel {
                tier: plan.info.tier.clone(),
                provider: target.provider.name().to_owned(),
                model: target.model.clone(),
                alias: req.model.clone(),
            }));
            plan.info.policy.push(PolicyCheck {
                action: "use_model",
                resource: target.backend.clone(),
                allowed: decision.allowed,
                reason: decision.reason.clone(),
            });
            if decision.allowed {
                allowed.push(target);
            } else {
                plan.info.attempts.push(Attempt {
                    target: target.backend.clone(),
                    error: Some(decision.reason.clone()),
                });
                first_denial.get_or_insert(decision.reason);
            }
        }
        plan.targets = allowed;
        let Some(first) = plan.targets.first() else {
            return Err(Error::Denied(
                first_denial.unwrap_or_else(|| "denied: no target is allowed".to_owned()),
            ));
        };
        if !self.budgets.has_rules() {
            return Ok(None);
        }
        let mut scopes = vec![Scope::User(principal.user.clone())];
        scopes.extend(principal.groups.iter().cloned().map(Scope::Team));
        scopes.extend(principal.project.clone().map(Scope::Project));
        scopes.extend(principal.key_id.clone().map(Scope::Key));
        let output = req
            .max_output_tokens
            .map_or(Estimate::DEFAULT_OUTPUT_RESERVE, u64::from);
        let estimate = Estimate::priced(&self.prices, &first.backend, context_tokens, output);
        Ok(Some((scopes, estimate)))
    }

    /// Hold the estimate against every matching budget and rate limit.
    async fn reserve(&self, admitted: Option<(Vec<Scope>, Estimate)>) -> Result<Option<Hold>> {
        match admitted {
            None => Ok(None),
            Some((scopes, estimate)) => self
                .budgets
                .reserve(&scopes, &estimate, now_ms())
                .await
                .map(Some),
        }
    }

    /// Route and admit a request without calling any upstream: the routing, policy and budget checks of a
    /// real request, with the budget reservation released again. For `tandem policy`-style dry runs and for
    /// measuring what governance costs per request.
    pub async fn preflight(
        &self,
        req: &ChatRequest,
        hints: &Hints,
        api: &str,
    ) -> Result<RouteInfo> {
        let mut plan = self.plan(req, hints)?;
        let admitted = self.admit(req, hints, api, &mut plan)?;
        let reservation = self.reserve(admitted).await?;
        self.settle(reservation, "", &Usage::default());
        Ok(plan.info)
    }

    /// Charge what an answer really used.
    fn settle(&self, reservation: Option<Hold>, backend: &str, usage: &Usage) {
        if let Some(hold) = reservation {
            self.budgets
                .settle(hold, &self.prices, backend, usage, now_ms());
        }
    }

    /// Model names to list on `/v1/models`: tier aliases, plain aliases, `auto`, then `provider/*`.
    pub fn model_names(&self) -> Vec<String> {
        self.model_names.clone()
    }

    /// Whether the embedded store answers.
    pub fn ready(&self) -> Result<()> {
        self.store.ping().map_err(Error::Store)
    }

    /// Wait until all records so far are on disk and every audit entry is sealed.
    pub fn flush(&self) -> Result<()> {
        if let Some(ledger) = self.recorder.ledger() {
            ledger.flush().map_err(Error::Audit)?;
        }
        self.store.flush().map_err(Error::Store)
    }

    /// The routing memory of a session (for tests and diagnostics).
    pub fn session(&self, key: &str) -> crate::SessionState {
        self.sessions.get(key, Instant::now())
    }

    /// Decide where a request goes, updating the session's routing memory.
    fn plan(&self, req: &ChatRequest, hints: &Hints) -> Result<Plan> {
        if req.model.is_empty() {
            return Err(Error::EmptyModel);
        }
        let explicit = match &hints.pace {
            Some(Pace::Tier(name)) => match self.tier_by_name.get(name) {
                Some(&index) => Some((index, "header".to_owned())),
                None => return Err(Error::UnknownTier(name.clone())),
            },
            Some(Pace::Auto) => None,
            None => self
                .tier_by_alias
                .get(&req.model)
                .map(|&index| (index, "alias".to_owned())),
        };
        let wants_router = explicit.is_none() && (hints.pace.is_some() || req.model == "auto");
        let now = Instant::now();
        if explicit.is_none() && !wants_router {
            return self.direct_plan(req);
        }
        let session = req.session.as_deref();
        let state = session
            .map(|key| self.sessions.get(key, now))
            .unwrap_or_default();
        let task = task_fingerprint(req);
        let retry = session.is_some() && state.last_task == Some(task);
        let mut info = RouteInfo::default();
        let (index, escalate) = match explicit {
            Some((index, reason)) => {
                info.reason = reason;
                (index, false)
            }
            None => {
                let Some(router) = &self.router else {
                    return Err(Error::NoRouter);
                };
                let facts = SessionFacts {
                    prior_failures: state.failures + u32::from(hints.failure_signal),
                    retries: state.retries + u32::from(retry),
                    interrupts: state.interrupts,
                    steers: 0,
                    escalated: state.escalated,
                };
                let features = tandem_router::extract(req, &facts);
                let signal = if hints.failure_signal {
                    Some("check-failed")
                } else if retry {
                    Some("retry")
                } else if features.trailing_tool_error {
                    Some("tool-error")
                } else {
                    None
                };
                let deep = self.deep_tier.as_deref().unwrap_or_default();
                let sticky = state.tier.as_deref();
                let decision = router.route(&features);
                info.score = Some(decision.score);
                info.class = Some(features.task_class.as_str().to_owned());
                let (tier, escalate) = match (sticky, signal) {
                    (Some(t), _) if state.escalated || t == deep => {
                        info.reason = "session:escalated".to_owned();
                        (deep.to_owned(), false)
                    }
                    (Some(_), Some(signal)) => {
                        info.reason = format!("escalate:{signal}");
                        (deep.to_owned(), true)
                    }
                    (Some(t), None) => {
                        info.reason = "session:sticky".to_owned();
                        (t.to_owned(), false)
                    }
                    (None, _) => {
                        info.reason = decision.reason.clone();
                        info.rule = decision.rule.clone();
                        let escalate = decision.tier == deep && signal.is_some();
                        (decision.tier.clone(), escalate)
                    }
                };
                let Some(&index) = self.tier_by_name.get(&tier) else {
                    return Err(Error::UnknownTier(tier));
                };
                (index, escalate)
            }
        };
        let tier = &self.tiers[index];
        info.tier = Some(tier.name.clone());
        if let Some(key) = session {
            let failed = hints.failure_signal || retry;
            self.sessions.update(key, now, |s| {
                s.tier = Some(tier.name.clone());
                s.escalated |= escalate;
                s.failures += u32::from(failed);
                s.retries += u32::from(retry);
                s.last_task = Some(task);
            });
        }
        let mut targets = tier.order(now);
        let mut seen = vec![index];
        let mut next = tier.fallback;
        while let Some(fallback) = next {
            if seen.contains(&fallback) {
                break;
            }
            seen.push(fallback);
            targets.extend(self.tiers[fallback].order(now));
            next = self.tiers[fallback].fallback;
        }
        if targets.is_empty() {
            return Err(Error::NoTargets(tier.name.clone()));
        }
        Ok(Plan { targets, info })
    }

    /// A name that is not a tier: plain alias, `provider/model`, or the first provider as is.
    fn direct_plan(&self, req: &ChatRequest) -> Result<Plan> {
        let model = req.model.as_str();
        let (index, upstream) = match self.aliases.get(model) {
            Some((index, upstream)) => (*index, upstream.as_str()),
            None => match model.split_once('/') {
                Some((provider, upstream)) if self.by_name.contains_key(provider) => {
                    if upstream.is_empty() {
                        return Err(Error::EmptyModel);
                    }
                    (self.by_name[provider], upstream)
                }
                _ => (0, model),
            },
        };
        let target = Arc::new(Target::direct(Arc::clone(&self.providers[index]), upstream));
        Ok(Plan {
            targets: vec![target],
            info: RouteInfo {
                reason: "model".to_owned(),
                ..RouteInfo::default()
            },
        })
    }

    /// Plan, admit, then try the plan's targets in order (with retries, first-token timeouts and circuit
    /// breakers) until `call` succeeds. Every failure on the way is recorded and releases the reservation;
    /// on success the caller gets the answer, the target, the routing record and the reservation to settle.
    async fn attempt<T>(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        hints: &Hints,
        call: impl for<'a> Fn(
            &'a Target,
            &'a ChatRequest,
            &'a Span,
        ) -> BoxFuture<'a, tandem_providers::Result<T>>,
    ) -> Result<Won<T>> {
        let span = tracing::info_span!(
            "tandem.route",
            "tandem.tier" = Empty,
            "tandem.route.reason" = Empty,
            "tandem.route.targets" = Empty,
            otel.status_code = Empty,
            "error.type" = Empty,
        );
        let mut plan = match span.in_scope(|| self.plan(req, hints)) {
            Ok(plan) => {
                span.record("tandem.tier", plan.info.tier.as_deref().unwrap_or(""));
                span.record("tandem.route.reason", plan.info.reason.as_str());
                span.record("tandem.route.targets", int(plan.targets.len()));
                plan
            }
            Err(err) => {
                failed(&span, &err);
                self.record_failure(exchange, req, None, &err);
                return Err(err);
            }
        };
        drop(span);
        let span = tracing::info_span!(
            "tandem.policy",
            "tandem.policy.allowed_targets" = Empty,
            "tandem.budget.reserved" = Empty,
            otel.status_code = Empty,
            "error.type" = Empty,
        );
        let admitted =
            match span.in_scope(|| self.admit(req, hints, exchange.api.as_str(), &mut plan)) {
                Ok(admitted) => self.reserve(admitted).instrument(span.clone()).await,
                Err(err) => Err(err),
            };
        let mut reservation = match admitted {
            Ok(reservation) => {
                span.record("tandem.policy.allowed_targets", int(plan.targets.len()));
                span.record("tandem.budget.reserved", reservation.is_some());
                reservation
            }
            Err(err) => {
                failed(&span, &err);
                self.record_failure(exchange, req, Some(&plan.info), &err);
                return Err(err);
            }
        };
        drop(span);
        let mut last_err = None;
        for target in plan.targets.clone() {
            if !target.try_acquire(Instant::now()) {
                plan.info.attempts.push(Attempt {
                    target: target.backend.clone(),
                    error: Some("circuit open".to_owned()),
                });
                continue;
            }
            let sent = reasoning::for_backend(req, &target.backend);
            for _ in 0..=target.retries {
                let span = upstream_span(&target, &sent);
                let pending = call(&target, &sent, &span).instrument(span.clone());
                let result = match target.first_token_timeout {
                    Some(limit) => tokio::time::timeout(limit, pending)
                        .await
                        .unwrap_or_else(|_| Err(timeout_error(&target, limit))),
                    None => pending.await,
                };
                if let Err(err) = &result {
                    let kind = crate::metrics::error_kind(err);
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", kind);
                    crate::metrics::upstream_error(target.provider.name(), err);
                }
                let err = match result {
                    Ok(value) => {
                        target.succeeded();
                        plan.info.target = target.backend.clone();
                        plan.info.attempts.push(Attempt {
                            target: target.backend.clone(),
                            error: None,
                        });
                        return Ok(Won {
                            value,
                            target: Arc::clone(&target),
                            info: plan.info,
                            reservation,
                        });
                    }
                    Err(err) => err,
                };
                plan.info.attempts.push(Attempt {
                    target: target.backend.clone(),
                    error: Some(err.to_string()),
                });
                if !retryable(&err) {
                    self.settle(reservation.take(), "", &Usage::default());
                    let err = Error::Provider(err);
                    self.record_failure(exchange, req, Some(&plan.info), &err);
                    return Err(err);
                }
                target.failed(Instant::now());
                last_err = Some(err);
            }
        }
        self.settle(reservation.take(), "", &Usage::default());
        let err = last_err.map_or(Error::AllTargetsOpen, Error::Provider);
        self.record_failure(exchange, req, Some(&plan.info), &err);
        Err(err)
    }

    /// Answer without streaming; the exchange is recorded either way.
    pub async fn complete(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        hints: &Hints,
    ) -> Result<(ChatResponse, RouteInfo)> {
        let findings = Findings::default();
        let (redacted, vault) = self.redact_request(exchange, req, &findings)?;
        let req = redacted.as_ref().unwrap_or(req);
        let abandoned = Abandoned::arm(self, exchange, req);
        let won = self
            .attempt(exchange, req, hints, |target, sent, span| {
                Box::pin(async move {
                    let resp = target.provider.complete(sent, &target.model).await?;
                    span.record("gen_ai.response.model", resp.model.as_str());
                    span.record("gen_ai.usage.input_tokens", int(resp.usage.input_tokens));
                    span.record("gen_ai.usage.output_tokens", int(resp.usage.output_tokens));
                    span.record(
                        "gen_ai.response.finish_reasons",
                        finish_reason(&resp.finish),
                    );
                    Ok(resp)
                })
            })
            .await;
        abandoned.disarm();
        let won = won?;
        let Won {
            value: mut resp,
            target,
            info,
            reservation,
        } = won;
        self.settle(reservation, &target.backend, &resp.usage);
        reasoning::tag_response(&target.backend, &mut resp);
        if let Some(config) = &self.dlp
            && let Err(err) = dlp::redact_response(config, &vault, &mut resp, &findings)
        {
            let err = Error::Dlp(err);
            let mut record = self.record(
                exchange,
                req,
                Some(&info),
                Outcome::Error,
                err.kind().http_status(),
                Some(err.to_string()),
            );
            record.usage = resp.usage;
            record.usage_exact = true;
            record.dlp = findings.to_json();
            let _ = self
                .recorder
                .finish(record, self.trail(exchange, req, Some(&info)));
            return Err(err);
        }
        let mut record = self.record(exchange, req, Some(&info), Outcome::Ok, 200, None);
        record.usage = resp.usage;
        record.usage_exact = true;
        record.dlp = findings.to_json();
        let mut trail = self.trail(exchange, req, Some(&info));
        trail.answer_hash = self.recorder.answer_hasher().map(|h| h.response(&resp));
        if let Some(content) = trail.content.as_mut() {
            content.answer = crate::audit::answer_text(&resp);
        }
        // The answer goes out only once its audit entry is journalled.
        self.recorder.finish(record, trail).map_err(Error::Audit)?;
        Ok((resp, info))
    }

    /// Redacts the request when DLP is on: the redacted copy (`None` when unchanged) and the vault of
    /// replaced values. A block is recorded and returned as a refusal.
    fn redact_request(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        findings: &Findings,
    ) -> Result<(Option<ChatRequest>, tandem_dlp::Vault)> {
        let Some(config) = &self.dlp else {
            return Ok((None, tandem_dlp::Vault::default()));
        };
        let span = tracing::info_span!(
            "tandem.dlp",
            "tandem.dlp.redacted" = Empty,
            otel.status_code = Empty,
            "error.type" = Empty,
        );
        let redacted =
            span.in_scope(|| dlp::redact_request(&config.redactor, &self.dlp_clean, req, findings));
        match redacted {
            Ok((copy, vault)) => {
                span.record("tandem.dlp.redacted", copy.is_some());
                Ok((copy, vault))
            }
            Err(err) => {
                let err = Error::Dlp(err);
                failed(&span, &err);
                self.record_failure(exchange, req, None, &err);
                Err(err)
            }
        }
    }

    /// Answer as a metered stream. The first target that produces a first event wins; failures before that
    /// move on to the next target. The record is written when the stream ends, fails or is dropped.
    pub async fn stream(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        hints: &Hints,
    ) -> Result<(MeteredStream, RouteInfo)> {
        let findings = Findings::default();
        let (redacted, vault) = self.redact_request(exchange, req, &findings)?;
        let req = redacted.as_ref().unwrap_or(req);
        let abandoned = Abandoned::arm(self, exchange, req);
        let won = self
            .attempt(exchange, req, hints, |target, sent, span| {
                Box::pin(open_stream(target, sent, span.clone()))
            })
            .await;
        abandoned.disarm();
        let won = won?;
        let Won {
            value: events,
            target,
            info,
            reservation,
        } = won;
        let mut record = self.record(exchange, req, Some(&info), Outcome::Cancelled, 200, None);
        // Provisional: replaced by the upstream's count if the stream gets that far.
        record.usage.input_tokens = estimate_prompt_tokens(req);
        let session = req.session.clone();
        let sessions = Arc::clone(&self.sessions);
        let budgets = Arc::clone(&self.budgets);
        let prices = Arc::clone(&self.prices);
        let on_close: crate::meter::OnClose = Box::new(move |record| {
            // A stream cut off by the client is charged for what was streamed.
            if let Some(held) = reservation {
                budgets.settle(held, &prices, &target.backend, &record.usage, now_ms());
            }
            if record.outcome == Outcome::Cancelled
                && let Some(key) = session
            {
                sessions.update(&key, Instant::now(), |s| s.interrupts += 1);
            }
        });
        let events: tandem_providers::EventStream = match &self.dlp {
            Some(config) if config.responses || (config.restore && !vault.is_empty()) => Box::pin(
                DlpStream::new(events, config.clone(), vault, findings.clone()),
            ),
            _ => events,
        };
        let metered = MeteredStream::new(
            events,
            record,
            exchange.started,
            Arc::clone(&self.recorder),
            Some(on_close),
        )
        .with_findings(findings)
        .with_trail(self.trail(exchange, req, Some(&info)));
        Ok((metered, info))
    }

    /// Record an exchange refused before it reached the pipeline (malformed body, too large, ...).
    pub fn record_rejected(
        &self,
        exchange: &Exchange,
        model: &str,
        kind: ErrorKind,
        message: &str,
    ) {
        let req = ChatRequest::new(model, Vec::new());
        let record = self.record(
            exchange,
            &req,
            None,
            Outcome::Error,
            kind.http_status(),
            Some(message.to_owned()),
        );
        let _ = self
            .recorder
            .finish(record, self.trail(exchange, &req, None));
    }

    fn record_failure(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        info: Option<&RouteInfo>,
        err: &Error,
    ) {
        let record = self.record(
            exchange,
            req,
            info,
            Outcome::Error,
            err.kind().http_status(),
            Some(err.to_string()),
        );
        let _ = self
            .recorder
            .finish(record, self.trail(exchange, req, info));
    }

    /// The audit context of an exchange.
    fn trail(&self, exchange: &Exchange, req: &ChatRequest, info: Option<&RouteInfo>) -> Trail {
        Trail {
            principal: exchange.principal.clone(),
            client: exchange.client.clone(),
            session: req.session.clone(),
            prompt_hash: exchange.prompt_hash.clone(),
            route_reason: info.map(|i| i.reason.clone()).filter(|r| !r.is_empty()),
            class: info.and_then(|i| i.class.clone()),
            policy: info.map(|i| i.policy.clone()).unwrap_or_default(),
            answer_hash: None,
            content: exchange
                .prompt_text
                .as_ref()
                .map(|text| tandem_audit::Content {
                    prompt: self.redacted_for_capture(text),
                    answer: String::new(),
                }),
        }
    }

    /// Whether the audit ledger keeps prompt and answer text (the gateway then passes the body).
    pub fn captures(&self) -> bool {
        self.recorder.captures()
    }

    /// Captured text passes DLP first; a value whose rule says block is withheld entirely.
    fn redacted_for_capture(&self, text: &str) -> String {
        match &self.dlp {
            None => text.to_owned(),
            Some(config) => config.redactor.redact(text).map_or_else(
                |err| format!("[withheld from capture: {err}]"),
                |redacted| redacted.text,
            ),
        }
    }

    /// Keyed hash of request bytes for the audit entry; `None` when auditing is off.
    pub fn content_hash(&self, bytes: &[u8]) -> Option<String> {
        self.recorder.content_hash(bytes)
    }

    /// The audit ledger, when auditing is on.
    pub fn audit_ledger(&self) -> Option<&Arc<tandem_audit::Ledger>> {
        self.recorder.ledger()
    }

    fn record(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        info: Option<&RouteInfo>,
        outcome: Outcome,
        status: u16,
        error: Option<String>,
    ) -> RequestRecord {
        let (provider, upstream_model) = info
            .and_then(|i| i.target.split_once('/'))
            .map_or((String::new(), String::new()), |(p, m)| {
                (p.to_owned(), m.to_owned())
            });
        RequestRecord {
            id: exchange.id.clone(),
            started_at_ms: exchange.started_at_ms,
            api: exchange.api.as_str().to_owned(),
            client_model: req.model.clone(),
            provider,
            upstream_model,
            stream: req.stream,
            status,
            outcome,
            error,
            usage: Usage::default(),
            usage_exact: false,
            latency_ms: elapsed_ms(exchange.started),
            ttft_ms: None,
            tier: info.and_then(|i| i.tier.clone()),
            route: info.and_then(|i| serde_json::to_string(i).ok()),
            dlp: None,
            cost: 0.0,
        }
    }
}

/// Records an exchange whose client went away while its upstream was being tried: the handler's future, and
/// with it the attempt, is dropped, and no other path would record the exchange. Armed around the attempt.
struct Abandoned<'a> {
    core: &'a Core,
    exchange: &'a Exchange,
    req: &'a ChatRequest,
}

impl<'a> Abandoned<'a> {
    fn arm(core: &'a Core, exchange: &'a Exchange, req: &'a ChatRequest) -> Self {
        Abandoned {
            core,
            exchange,
            req,
        }
    }

    /// The attempt returned: whatever it ended in is recorded elsewhere.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        // 499, as in nginx's logs: the client closed the request before any answer; no response carries it.
        let record = self.core.record(
            self.exchange,
            self.req,
            None,
            Outcome::Cancelled,
            499,
            Some("the client went away before the answer started".to_owned()),
        );
        let trail = self.core.trail(self.exchange, self.req, None);
        let _ = self.core.recorder.finish(record, trail);
    }
}

/// Start a stream on `target` and wait for its first event, so that a failure before the first token can
/// still fall back to another target. Reasoning blobs in the answer are tagged with the target.
///
/// The stream holds the attempt's `span`, so the upstream span ends when the upstream stream does, and records the
/// answer's model, usage and finish reason on it as they pass.
async fn open_stream(
    target: &Target,
    req: &ChatRequest,
    span: Span,
) -> tandem_providers::Result<EventStream> {
    let mut events = target.provider.stream(req, &target.model).await?;
    let mut head = Vec::new();
    loop {
        match events.next().await {
            None => break,
            Some(Err(err)) => return Err(err),
            Some(Ok(event)) => {
                let content = !matches!(event, StreamEvent::Start { .. });
                head.push(Ok(event));
                if content {
                    break;
                }
            }
        }
    }
    let backend = target.backend.clone();
    let stream = futures::stream::iter(head).chain(events).map(move |item| {
        match &item {
            Ok(event) => record_event(&span, event),
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", crate::metrics::error_kind(err));
            }
        }
        item.map(|event| reasoning::tag_event(&backend, event))
    });
    Ok(Box::pin(stream))
}

/// The CLIENT span of one upstream attempt, after the OpenTelemetry GenAI conventions (`chat {model}`).
fn upstream_span(target: &Target, req: &ChatRequest) -> Span {
    let (host, port) = target.provider.address().unwrap_or(("", 0));
    tracing::info_span!(
        "tandem.upstream",
        otel.name = %format_args!("chat {}", target.model),
        otel.kind = "client",
        otel.status_code = Empty,
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = target.provider.api_name(),
        "gen_ai.request.model" = target.model.as_str(),
        "gen_ai.request.max_tokens" = req.max_output_tokens.map(i64::from),
        "gen_ai.response.model" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "server.address" = host,
        "server.port" = i64::from(port),
        "tandem.provider" = target.provider.name(),
        "tandem.stream" = req.stream,
        "error.type" = Empty,
    )
}

/// Record what a streamed event says about the answer on a span (`gen_ai.response.model`,
/// `gen_ai.response.finish_reasons`, `gen_ai.usage.*`); fields the span does not declare are ignored.
pub fn record_event(span: &Span, event: &StreamEvent) {
    match event {
        StreamEvent::Start { model, .. } => {
            span.record("gen_ai.response.model", model.as_str());
        }
        StreamEvent::Finish(reason) => {
            span.record("gen_ai.response.finish_reasons", finish_reason(reason));
        }
        StreamEvent::Usage(usage) => {
            span.record("gen_ai.usage.input_tokens", int(usage.input_tokens));
            span.record("gen_ai.usage.output_tokens", int(usage.output_tokens));
        }
        _ => {}
    }
}

/// The GenAI conventions' spelling of a finish reason.
pub fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// A count as a span attribute: OpenTelemetry integers are `i64` (`tracing-opentelemetry` turns `u64` into text).
pub fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Mark a pipeline step's span as failed.
fn failed(span: &Span, err: &Error) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", tracing::field::debug(err.kind()));
}

fn timeout_error(target: &Target, limit: Duration) -> tandem_providers::Error {
    tandem_providers::Error::Timeout {
        provider: target.provider.name().to_owned(),
        phase: "first token",
        elapsed: limit,
    }
}

/// Whether another attempt may succeed where this one failed (the request itself was not at fault).
fn retryable(err: &tandem_providers::Error) -> bool {
    use tandem_providers::Error as E;
    match err {
        E::Connect { .. }
        | E::Timeout { .. }
        | E::Reset { .. }
        | E::Truncated { .. }
        | E::Malformed { .. } => true,
        E::Status { status, .. } => *status >= 500 || matches!(status, 408 | 409 | 429),
        E::Config { .. } | E::Refused { .. } | E::Internal { .. } => false,
    }
}

/// Fingerprint of the task a request carries: the last user text and the conversation length.
/// Two requests of one session with the same fingerprint are the same task sent again.
fn task_fingerprint(req: &ChatRequest) -> (u64, usize) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(user) = req.messages.iter().rev().find(|m| m.role == Role::User) {
        for part in &user.parts {
            if let Part::Text(text) = part {
                text.hash(&mut hasher);
            }
        }
    }
    (hasher.finish(), req.messages.len())
}

/// Prompt size in tokens, estimated as characters / 4 of all text (the same rule the router uses).
fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    let mut chars = 0usize;
    for message in &req.messages {
        for part in &message.parts {
            chars += match part {
                Part::Text(t) => t.len(),
                Part::ToolCall { arguments, .. } => arguments.len(),
                Part::ToolResult { content, .. } => content.len(),
                Part::Reasoning { text, .. } => text.len(),
                Part::Image { .. } => 0,
            };
        }
    }
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}
