# Reference values of profile-likelihood confidence intervals for
# tests/models/test_lmm_profile.py, run offline (R is never a test dependency):
#   cd tests/reference && Rscript lme4_profile_reference.R > lme4_profile_reference.Rout 2>&1
# Reads sleepstudy.csv and als_sim.csv; writes lme4_profile_reference.json.
#
# For each model it saves
#   * lme4's confint(m, method = "profile") (rows .sig01, ..., .sigma, then the fixed
#     effects; the names of confint(..., oldNames = FALSE) beside them).  lme4 finds
#     the limits by interpolating a spline through the profile, so they are the
#     crossing points only to about 1e-4 relative;
#   * the crossing points themselves, solved here with uniroot() on lme4's own
#     deviance function (lme4:::devfun2: the ML deviance at given sd/cor/sigma with
#     the fixed effects profiled out, the other parameters optimised by bobyqa), and,
#     for the fixed effects, on the ML deviance of lmer() refits with the effect moved
#     into an offset (as profile.merMod does).  These are the "exact" references;
#   * the ML estimates on lme4's sd/cor scale (lme4 profiles an ML refit of a REML
#     fit: devfun2() starts with refitML()).
suppressMessages({library(lme4); library(jsonlite); library(minqa)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")),
    "\n")

sleep <- read.csv("sleepstudy.csv")
sleep$g2 <- factor((seq_len(nrow(sleep)) - 1) %/% 3 %% 5)  # a near-null grouping
sleep$g3 <- factor((seq_len(nrow(sleep)) - 1) %% 3)  # a null grouping: sd estimate 0
sleep$D2 <- (sleep$Days - 4.5)^2 / 10  # a third random effect (3 x 3 covariance)
als <- read.csv("als_sim.csv", stringsAsFactors = TRUE)
ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))
level <- 0.95
cval <- sqrt(qchisq(level, 1))

# zeta of variance parameter w at value x: the other sd/cor/sigma optimised
zeta_var <- function(dd, w, x, opt, base, lower, upper) {
  nvp <- length(lower)
  scale <- ifelse(is.finite(upper) & upper <= 1, 1, pmax(abs(opt[seq_len(nvp)]), 1e-3))
  f <- function(u) {
    par <- numeric(nvp); par[w] <- x; par[-w] <- u * scale[-w]
    v <- dd(par)
    if (is.na(v)) 1e10 else v
  }
  o <- bobyqa(opt[seq_len(nvp)][-w] / scale[-w], f,
              lower = lower[-w] / scale[-w], upper = upper[-w] / scale[-w],
              control = list(rhobeg = 0.02, rhoend = 1e-11, maxfun = 1e5))
  sign(x - opt[w]) * sqrt(max(o$fval - base, 0))
}

# zeta of fixed effect j at value x: ML refit with X[, j] * x as an offset
zeta_fixed <- function(m_ml, j, x, base, re_formula) {
  X <- getME(m_ml, "X"); y <- getME(m_ml, "y")
  d <- m_ml@frame
  d$.y <- y; d$.off <- X[, j] * x
  Xd <- X[, -j, drop = FALSE]
  d$.X <- Xd
  f <- as.formula(paste(".y ~ 0 + .X + offset(.off) +", re_formula))
  if (ncol(Xd) == 0) f <- as.formula(paste(".y ~ 0 + offset(.off) +", re_formula))
  mj <- suppressWarnings(lmer(f, d, REML = FALSE, control = ctrl))
  sign(x - fixef(m_ml)[j]) * sqrt(max(deviance(mj) - base, 0))
}

crossing <- function(zf, est, lim, bound, side) {
  target <- side * cval
  # the profile does not cross before the boundary: lme4 reports the boundary
  if (is.finite(bound) && abs(lim - bound) < 1e-8) {
    if (side * zf(bound) < cval) return(bound)
  }
  far <- lim + 0.3 * (lim - est)
  if (is.finite(bound)) far <- if (side > 0) min(far, bound) else max(far, bound)
  uniroot(function(x) zf(x) - target, sort(c(est + 0.5 * (lim - est), far)),
          tol = 1e-11, extendInt = "yes")$root
}

one <- function(name, formula, data, REML, re_formula) {
  m <- lmer(formula, data, REML = REML, control = ctrl)
  ci <- confint(m, method = "profile", level = level)
  ci_names <- rownames(confint(m, method = "profile", level = level, oldNames = FALSE,
                               parm = seq_len(nrow(ci))))
  m_ml <- if (REML) refitML(m) else m
  dd <- lme4:::devfun2(m, useSc = TRUE, signames = TRUE)
  opt <- attr(dd, "optimum"); base <- attr(dd, "basedev")
  p <- length(fixef(m)); nvp <- length(opt) - p
  # profile.merMod's bounds on the sd/cor scale (lme4 1.1.31)
  lower <- c(pmax(m@lower, -1), 0); upper <- c(ifelse(m@lower == 0, Inf, 1), Inf)
  exact <- matrix(NA_real_, nrow(ci), 2)
  for (w in seq_len(nvp)) {
    zf <- function(x) zeta_var(dd, w, x, opt, base, lower, upper)
    exact[w, 1] <- crossing(zf, opt[w], ci[w, 1], lower[w], -1)
    exact[w, 2] <- crossing(zf, opt[w], ci[w, 2], upper[w], +1)
  }
  for (j in seq_len(p)) {
    zf <- function(x) zeta_fixed(m_ml, j, x, base, re_formula)
    est <- fixef(m_ml)[j]
    exact[nvp + j, 1] <- crossing(zf, est, ci[nvp + j, 1], -Inf, -1)
    exact[nvp + j, 2] <- crossing(zf, est, ci[nvp + j, 2], Inf, +1)
  }
  dimnames(exact) <- dimnames(ci)
  cat("\n==== ", name, " (", deparse(formula), ", REML =", REML, ")\n")
  print(ci, digits = 12)
  cat("crossing points (uniroot on lme4's deviance):\n")
  print(exact, digits = 12)
  cat("max relative difference confint vs crossing points:",
      max(abs(ci - exact) / pmax(abs(exact), 1e-8)), "\n")
  list(formula = deparse(formula), REML = REML, level = level,
       names = rownames(ci), lme4_names = ci_names,
       lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       exact_lower = unname(exact[, 1]), exact_upper = unname(exact[, 2]),
       ml_estimate = unname(opt), ml_deviance = base)
}

res <- list(
  sleep_reml = one("sleep_reml", Reaction ~ Days + (Days | Subject), sleep, TRUE,
                   "(Days | Subject)"),
  sleep_ml = one("sleep_ml", Reaction ~ Days + (Days | Subject), sleep, FALSE,
                 "(Days | Subject)"),
  sleep_int = one("sleep_int", Reaction ~ Days + (1 | Subject), sleep, TRUE,
                  "(1 | Subject)"),
  sleep_int_ml = one("sleep_int_ml", Reaction ~ Days + (1 | Subject), sleep, FALSE,
                     "(1 | Subject)"),
  sleep_boundary = one("sleep_boundary", Reaction ~ Days + (1 | g2), sleep, TRUE,
                       "(1 | g2)"),
  sleep_uncorr = one("sleep_uncorr", Reaction ~ Days + (1 | Subject) + (0 + Days | Subject),
                     sleep, TRUE, "(1 | Subject) + (0 + Days | Subject)"),
  sleep_singular = one("sleep_singular", Reaction ~ Days + (1 | g3), sleep, FALSE,
                       "(1 | g3)"),
  sleep_null = one("sleep_null", Reaction ~ 1 + (1 | Subject), sleep, TRUE,
                   "(1 | Subject)"),
  sleep_two = one("sleep_two", Reaction ~ Days + (1 | g2) + (Days | Subject), sleep,
                  TRUE, "(1 | g2) + (Days | Subject)"),
  sleep_quad = one("sleep_quad", Reaction ~ Days + (Days + D2 | Subject), sleep, FALSE,
                   "(Days + D2 | Subject)"),
  als_reml = one("als_reml", alsfrs_r_total ~ months * onset_site + age_at_onset +
                   (months | subject_id), als, TRUE, "(months | subject_id)")
)
print(warnings())
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "lme4_profile_reference.json")
