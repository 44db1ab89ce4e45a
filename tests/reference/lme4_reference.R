# Reference values for tests/models/test_lmm.py, run offline (R is never a test
# dependency):   cd tests/reference && Rscript lme4_reference.R > lme4_reference.Rout 2>&1
# Writes sleepstudy.csv (lme4's data set) and lme4_reference.json (all fitted values).
suppressMessages({library(lme4); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")), "\n")

write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
als <- read.csv("als_sim.csv", stringsAsFactors = TRUE)  # NA rows: lmer's na.omit

ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))

one <- function(name, formula, data, REML = TRUE) {
  m <- lmer(formula, data, REML = REML, control = ctrl)
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m)[[1]]
  out <- list(
    formula = deparse(formula), REML = REML,
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    vcov_re = unname(as.matrix(Matrix::bdiag(VarCorr(m)))),
    varcorr = vc,
    criterion = if (REML) REMLcrit(m) else deviance(m),
    logLik = as.numeric(logLik(m)),
    nobs = nobs(m), ngrps = unname(ngrps(m)),
    singular = isSingular(m),
    ranef_names = colnames(re), ranef_levels = rownames(re),
    ranef = unname(as.matrix(re)),
    confint_wald = unname(confint(m, method = "Wald", parm = "beta_"))
  )
  cat("\n==== ", name, "\n"); print(summary(m)); print(getME(m, "theta"))
  cat("criterion", out$criterion, " singular", out$singular, "\n")
  out
}

res <- list(
  sleep_reml = one("sleep_reml", Reaction ~ Days + (Days | Subject), sleepstudy),
  sleep_ml = one("sleep_ml", Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE),
  sleep_uncorr = one("sleep_uncorr", Reaction ~ Days + (1 | Subject) + (0 + Days | Subject),
                     sleepstudy),
  sleep_int = one("sleep_int", Reaction ~ Days + (1 | Subject), sleepstudy),
  als_reml = one("als_reml", alsfrs_r_total ~ months * onset_site + age_at_onset +
                   (months | subject_id), als),
  als_ml = one("als_ml", alsfrs_r_total ~ months * onset_site + age_at_onset +
                 (months | subject_id), als, REML = FALSE),
  als_uncorr = one("als_uncorr", alsfrs_r_total ~ months + (1 | subject_id) +
                     (0 + months | subject_id), als),
  # L-BFGS-B from lme4's start lands on theta_3 = 0 here (a stationary point on the
  # boundary); the optimum is inside
  sleep_log = one("sleep_log", log(Reaction) ~ cD + (cD | Subject),
                  transform(sleepstudy, cD = Days - mean(Days))),
  # singular: every group has the same mean, so the group variance is estimated as 0
  noise_int = one("noise_int", y ~ 1 + (1 | g), data.frame(
    y = c(1, -1, 0, 2, -2, 0, 0.5, -0.5, 0, 1.5, -1.5, 0),
    g = rep(c("a", "b", "c", "d"), each = 3)))
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "lme4_reference.json")
