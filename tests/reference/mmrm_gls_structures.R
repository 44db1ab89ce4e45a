# Reference values for tests/models/test_mmrm_structures.py, run offline (R is a
# reference only, never a test or runtime dependency; Debian: apt-get install
# r-base-core r-cran-nlme r-cran-emmeans r-cran-jsonlite):
#   cd tests/reference && Rscript mmrm_gls_structures.R > mmrm_gls_structures.Rout 2>&1
# (the mmrm repository's data/fev_data.rda and data/bcva_data.rda must be in this
# folder the first time, to write mmrm_fev_data.csv and mmrm_bcva_data.csv; later
# runs read the CSVs).
#
# Data: fev_data and bcva_data as published in the R package mmrm's repository
# (openpharma/mmrm, data/*.rda; SEX written as GENDER, a name alsprog's data
# dictionary does not reserve), and the simulated ALS trial mmrm_trial.csv.
# Models: nlme::gls with every covariance structure of mmrm that gls can express:
#   unstructured                = corSymm + varIdent(~ 1 | visit)
#   toeplitz                    = corARMA(p = T - 1)  (an AR(T-1) process's
#                                 autocorrelations at lags 1..T-1 range over every
#                                 positive-definite Toeplitz correlation matrix)
#   heterogeneous_toeplitz      = corARMA(p = T - 1) + varIdent
#   ar1, heterogeneous_ar1      = corAR1 (+ varIdent)
#   compound_symmetry (+ het.)  = corCompSymm (+ varIdent)
# by REML and ML; observation weights w as varFixed(~ 1 / w) (combined with
# varIdent); a group-specific unstructured covariance (one per arm) as corSymm over
# visit x arm positions (a subject only ever uses its arm's block, so the
# cross-arm correlations never enter the likelihood) + varIdent(~ 1 | visit * arm);
# a group-specific covariance of any structure, exactly, for a model whose mean is
# saturated in the group (group x visit cell means): one gls per group.
# Ante-dependence has no gls equivalent (checked in the test against a dense
# likelihood).
#
# Precision: gls stops its optimiser about 1e-9 short of the optimum, leaving
# estimates wrong in the 5th-6th digit.  Each fit below is polished as in
# mmrm_bodyweight.R: after nlminb, Newton steps on nlme's own objective
# (-logLik(glsSt, pars)) with central-difference derivatives until the step is below
# 1e-9 (bcva's unstructured fits, 55 parameters, are left as gls ends them: their
# tolerance in the test is wider).  gls's ML standard errors are scaled by
# sqrt(N / (N - p)); the JSON holds them unscaled (se) as mmrm reports them and as
# gls prints them (se_gls).
suppressMessages({library(nlme); library(emmeans); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " nlme", as.character(packageVersion("nlme")),
    " emmeans", as.character(packageVersion("emmeans")),
    " jsonlite", as.character(packageVersion("jsonlite")), "\n")

if (!file.exists("mmrm_fev_data.csv")) {
  load("fev_data.rda"); load("bcva_data.rda")
  fev <- data.frame(USUBJID = as.character(fev_data$USUBJID),
                    AVISIT = as.character(fev_data$AVISIT),
                    ARMCD = as.character(fev_data$ARMCD),
                    RACE = as.character(fev_data$RACE),
                    GENDER = as.character(fev_data$SEX),
                    FEV1_BL = fev_data$FEV1_BL, FEV1 = fev_data$FEV1,
                    WEIGHT = fev_data$WEIGHT)
  write.csv(fev, "mmrm_fev_data.csv", row.names = FALSE)
  bcva <- data.frame(USUBJID = as.character(bcva_data$USUBJID),
                     AVISIT = as.character(bcva_data$AVISIT),
                     ARMCD = bcva_data$ARMCD, RACE = bcva_data$RACE,
                     BCVA_BL = bcva_data$BCVA_BL, BCVA_CHG = bcva_data$BCVA_CHG)
  write.csv(bcva, "mmrm_bcva_data.csv", row.names = FALSE)
}

# ---------------------------------------------------------------- polished gls
grad_fd <- function(fn, x, h = 1e-4) {
  vapply(seq_along(x), function(k) {
    e <- replace(numeric(length(x)), k, h)
    (fn(x + e) - fn(x - e)) / (2 * h)
  }, 0)
}
hess_fd <- function(fn, x, h = 1e-3) {
  k <- length(x); H <- matrix(0, k, k); f0 <- fn(x)
  for (i in 1:k) for (j in i:k) {
    ei <- replace(numeric(k), i, h); ej <- replace(numeric(k), j, h)
    H[i, j] <- H[j, i] <- (fn(x + ei + ej) - fn(x + ei - ej) - fn(x - ei + ej) +
                           fn(x - ei - ej)) / (4 * h * h)
  }
  H
}
POLISH <- TRUE
newton_polish <- function(par, fn) {
  if (!POLISH || length(par) == 0) return(par)
  H <- hess_fd(fn, par)
  for (it in 1:30) {
    g <- grad_fd(fn, par)
    step <- solve(H, g)
    f0 <- fn(par); t <- 1
    while (fn(par - t * step) > f0 + 1e-12 * abs(f0) && t > 1e-6) t <- t / 2
    par <- par - t * step
    if (max(abs(t * step)) < 1e-9) break
  }
  cat(sprintf("  polished: %d Newton steps, last max |step| %.1e, max |gradient| %.1e\n",
              it, max(abs(t * step)), max(abs(g))))
  par
}
src <- deparse(gls)
hook <- "coef(glsSt) <- optRes$par"
stopifnot(sum(grepl(hook, src, fixed = TRUE)) == 1)
src <- sub(hook, "coef(glsSt) <- newton_polish(optRes$par, function(p) -logLik(glsSt, p))",
           src, fixed = TRUE)
gls_polished <- eval(parse(text = src))
environment(gls_polished) <- asNamespace("nlme")
ctl <- glsControl(tolerance = 1e-12, msTol = 1e-14, maxIter = 1000, msMaxIter = 1000)

# Sigma of a subject seen at every visit, weights taken out: W^1/2 V W^1/2
full_sigma <- function(m, d, subject, n_visits, w = NULL, among = NULL) {
  ids <- if (is.null(among)) d[[subject]] else d[[subject]][among]
  tab <- table(ids)
  who <- names(tab)[tab == n_visits][1]
  V <- unclass(getVarCov(m, individual = who))
  if (!is.null(w)) {
    sw <- sqrt(d[[w]][d[[subject]] == who])
    V <- diag(sw) %*% V %*% diag(sw)
  }
  unname(V)
}

one <- function(tag, f, d, corr, weights, method, subject, n_visits, w = NULL,
                groups = NULL, group_col = NULL) {
  t0 <- Sys.time()
  m <- gls_polished(f, data = d, correlation = corr, weights = weights,
                    method = method, control = ctl)
  N <- nrow(d); p <- length(coef(m))
  se_gls <- unname(sqrt(diag(vcov(m))))
  se <- if (method == "ML") se_gls * sqrt((N - p) / N) else se_gls
  cov <- if (is.null(groups)) list(full_sigma(m, d, subject, n_visits, w)) else
    lapply(groups, function(g) full_sigma(m, d, subject, n_visits, w,
                                          among = d[[group_col]] == g))
  cat(sprintf("\n==== %s (%.1f s)  logLik %.10f\n", tag,
              as.numeric(Sys.time() - t0, units = "secs"), as.numeric(logLik(m))))
  print(coef(m)); print(cov)
  list(coef = as.list(coef(m)), se = se, se_gls = se_gls, cov = cov,
       logLik = as.numeric(logLik(m)), nobs = N, method = method)
}

gls_structures <- function(f, d, subject, visit, n_visits, methods = c("REML", "ML"),
                           which = c("unstructured", "toeplitz", "heterogeneous_toeplitz",
                                     "ar1", "heterogeneous_ar1", "compound_symmetry",
                                     "heterogeneous_compound_symmetry")) {
  sf <- as.formula(paste("~ vi |", subject))
  s1 <- as.formula(paste("~ 1 |", subject))
  vf <- varIdent(form = as.formula(paste("~ 1 |", visit)))
  spec <- list(
    unstructured = list(corSymm(form = sf), vf),
    toeplitz = list(corARMA(form = sf, p = n_visits - 1), NULL),
    heterogeneous_toeplitz = list(corARMA(form = sf, p = n_visits - 1), vf),
    ar1 = list(corAR1(form = sf), NULL),
    heterogeneous_ar1 = list(corAR1(form = sf), vf),
    compound_symmetry = list(corCompSymm(form = s1), NULL),
    heterogeneous_compound_symmetry = list(corCompSymm(form = s1), vf))
  out <- list()
  for (s in which) for (meth in methods) {
    out[[paste(s, meth, sep = "_")]] <- one(paste(s, meth), f, d, spec[[s]][[1]],
                                            spec[[s]][[2]], meth, subject, n_visits)
  }
  out
}

res <- list()

# ------------------------------------------------------------------ fev_data
fev <- read.csv("mmrm_fev_data.csv")
fev <- fev[!is.na(fev$FEV1), ]
fev$AVISIT <- factor(fev$AVISIT)
fev$ARMCD <- factor(fev$ARMCD, levels = c("PBO", "TRT"))
fev$RACE <- factor(fev$RACE)
fev$GENDER <- factor(fev$GENDER, levels = c("Male", "Female"))
fev$vi <- as.integer(fev$AVISIT)
fev$invw <- 1 / fev$WEIGHT
ffev <- FEV1 ~ RACE + GENDER + ARMCD * AVISIT
res$fev <- gls_structures(ffev, fev, "USUBJID", "AVISIT", 4)
for (meth in c("REML", "ML")) {
  res$fev[[paste0("weighted_unstructured_", meth)]] <- one(
    paste("weighted unstructured", meth), ffev, fev, corSymm(form = ~ vi | USUBJID),
    varComb(varIdent(form = ~ 1 | AVISIT), varFixed(~ invw)), meth, "USUBJID", 4,
    w = "WEIGHT")
  res$fev[[paste0("weighted_ar1_", meth)]] <- one(
    paste("weighted ar1", meth), ffev, fev, corAR1(form = ~ vi | USUBJID),
    varFixed(~ invw), meth, "USUBJID", 4, w = "WEIGHT")
  fev$vi2 <- fev$vi + 4L * (as.integer(fev$ARMCD) - 1L)
  res$fev[[paste0("group_unstructured_", meth)]] <- one(
    paste("unstructured by ARMCD", meth), ffev, fev, corSymm(form = ~ vi2 | USUBJID),
    varIdent(form = ~ 1 | AVISIT * ARMCD), meth, "USUBJID", 4,
    groups = levels(fev$ARMCD), group_col = "ARMCD")
}

# LS means as emmeans computes them on gls fits, FEV1_BL at its mean, RACE x GENDER
# averaged equally or in proportion to their frequencies (weights =
# "proportional"): the unstructured fit (corSymm + varIdent) with equal weights,
# and a compound-symmetry fit without variance weights with both (emmeans counts a
# gls fit's varIdent variance weights as case weights in its "proportional"
# frequencies, which mmrm's case weights are not).
fem <- FEV1 ~ FEV1_BL + RACE + GENDER + ARMCD * AVISIT
em_of <- function(m, w) {
  e <- as.data.frame(summary(emmeans(m, ~ ARMCD | AVISIT, weights = w,
                                     mode = "df.error", data = fev)))
  cat("\n==== emmeans, weights =", w, "\n"); print(e)
  list(arm = as.character(e$ARMCD), visit = as.character(e$AVISIT),
       estimate = e$emmean, se = e$SE)
}
m_us <- gls_polished(fem, data = fev, correlation = corSymm(form = ~ vi | USUBJID),
                     weights = varIdent(form = ~ 1 | AVISIT), method = "REML",
                     control = ctl)
m_cs <- gls_polished(fem, data = fev, correlation = corCompSymm(form = ~ 1 | USUBJID),
                     method = "REML", control = ctl)
res$fev_emmeans <- list(
  unstructured = list(logLik = as.numeric(logLik(m_us)), equal = em_of(m_us, "equal")),
  compound_symmetry = list(logLik = as.numeric(logLik(m_cs)),
                           equal = em_of(m_cs, "equal"),
                           proportional = em_of(m_cs, "proportional")))

# group-specific covariance of any structure, mean saturated in the group: one gls
# per arm with cell means; the joint fit's log-likelihood is the sum of the arms'
# less log|det M| under REML (X_joint = X_cells M), and LS means are cell means.
saturated_by_group <- function(structure, meth) {
  sf <- ~ vi | USUBJID
  spec <- list(ar1 = list(corAR1(form = sf), NULL),
               heterogeneous_compound_symmetry = list(corCompSymm(form = ~ 1 | USUBJID),
                                                      varIdent(form = ~ 1 | AVISIT)),
               toeplitz = list(corARMA(form = sf, p = 3), NULL))[[structure]]
  ll <- 0; cells <- list(); covs <- list()
  for (g in levels(fev$ARMCD)) {
    dg <- fev[fev$ARMCD == g, ]
    m <- gls_polished(FEV1 ~ 0 + AVISIT, data = dg, correlation = spec[[1]],
                      weights = spec[[2]], method = meth, control = ctl)
    N <- nrow(dg); p <- length(coef(m))
    sc <- if (meth == "ML") sqrt((N - p) / N) else 1
    ll <- ll + as.numeric(logLik(m))
    cells[[g]] <- list(estimate = unname(coef(m)), se = unname(sqrt(diag(vcov(m)))) * sc)
    covs[[g]] <- full_sigma(m, dg, "USUBJID", 4)
  }
  Xc <- model.matrix(~ 0 + ARMCD:AVISIT, fev)
  Xj <- model.matrix(~ ARMCD * AVISIT, fev)
  M <- solve(crossprod(Xc), crossprod(Xc, Xj))
  if (meth == "REML") ll <- ll - as.numeric(determinant(M)$modulus)
  cat(sprintf("\n==== saturated %s by ARMCD %s  logLik %.10f\n", structure, meth, ll))
  print(cells); print(covs)
  list(logLik = ll, cells = cells, cov = unname(covs), visits = levels(fev$AVISIT),
       groups = levels(fev$ARMCD), method = meth)
}
res$fev_saturated <- list()
for (s in c("ar1", "heterogeneous_compound_symmetry", "toeplitz"))
  for (meth in c("REML", "ML"))
    res$fev_saturated[[paste(s, meth, sep = "_")]] <- saturated_by_group(s, meth)

# ------------------------------------------------------------------ ALS trial
trial <- read.csv("mmrm_trial.csv")
trial <- trial[!is.na(trial$chg), ]
trial$vi <- match(trial$visit, sort(unique(trial$visit)))
trial$visit <- factor(trial$visit)
trial$arm <- factor(trial$arm, levels = c("placebo", "active"))
res$trial <- gls_structures(chg ~ visit * arm + baseline_total, trial, "subject_id",
                            "visit", 4)

# ------------------------------------------------------------------ bcva_data
bcva <- read.csv("mmrm_bcva_data.csv")
bcva$AVISIT <- factor(bcva$AVISIT)
bcva$ARMCD <- factor(bcva$ARMCD, levels = c("CTL", "TRT"))
bcva$vi <- as.integer(bcva$AVISIT)
fb <- BCVA_CHG ~ BCVA_BL + ARMCD * AVISIT
res$bcva <- gls_structures(fb, bcva, "USUBJID", "AVISIT", 10,
                           which = c("ar1", "heterogeneous_ar1", "compound_symmetry",
                                     "heterogeneous_compound_symmetry"))
POLISH <- FALSE
res$bcva <- c(res$bcva, gls_structures(fb, bcva, "USUBJID", "AVISIT", 10,
                                       which = "unstructured"))

writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "mmrm_gls_structures.json")
