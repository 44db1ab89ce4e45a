# Reference values for tests/models/test_mmrm_inference.py (MMRM inference: sandwich
# covariances, Kenward-Roger), run offline (R is never a test dependency):
#   cd tests/reference && Rscript mmrm_inference_reference.R > mmrm_inference_reference.Rout 2>&1
#
# Data: fev_data_inference.csv is the R package mmrm's `fev_data`
# (github.com/openpharma/mmrm, data/fev_data.rda at commit
# ec290b2695b25057b31bc98e27c39d3f498cd0d6), written once by
#   load("fev_data.rda"); write.csv(fev_data, "fev_data_inference.csv", row.names = FALSE)
# and mmrm_trial.csv (the simulated ALS trial of mmrm_reference.R).
#
# 1. nlme::gls REML fits (unstructured = corSymm + varIdent by visit, compound symmetry,
#    AR(1) by visit number; one AR(1) fit weighted as mmrm weights: variance / WEIGHT)
#    and clubSandwich::vcovCR CR0 / CR2 / CR3 with coef_test's Satterthwaite df.  Per fit
#    the JSON holds the model matrix, the response, the subject and visit (0-based) of
#    each row, each
#    subject's fitted covariance block (sigma^2 x clubSandwich's target), beta and
#    vcov(gls).
# 2. pbkrtest on a random-intercept lmer fit of the trial (vcovAdj, KR ddf for
#    contrasts), with the variance components: the same model is an MMRM with
#    Sigma = s2_b J + s2 I, linear in (s2_b, s2).
suppressMessages({
  library(nlme); library(clubSandwich); library(lme4); library(pbkrtest)
  library(jsonlite)
})
options(digits = 15)
cat("R", R.version$major, R.version$minor,
    " nlme", as.character(packageVersion("nlme")),
    " clubSandwich", as.character(packageVersion("clubSandwich")),
    " lme4", as.character(packageVersion("lme4")),
    " pbkrtest", as.character(packageVersion("pbkrtest")), "\n")
ctl <- glsControl(tolerance = 1e-12, msTol = 1e-14, maxIter = 1000, msMaxIter = 1000)

fev <- read.csv("fev_data_inference.csv")
fev <- fev[!is.na(fev$FEV1), ]
fev$USUBJID <- factor(fev$USUBJID, levels = unique(fev$USUBJID))
fev$AVISIT <- factor(fev$AVISIT)
fev$ARMCD <- factor(fev$ARMCD, levels = c("PBO", "TRT"))
fev$RACE <- factor(fev$RACE, levels = c("Asian", "Black or African American", "White"))
fev$SEX <- factor(fev$SEX, levels = c("Male", "Female"))
fev$INVWEIGHT <- 1 / fev$WEIGHT

trial <- read.csv("mmrm_trial.csv")
trial <- trial[!is.na(trial$chg), ]
trial$subject_id <- factor(trial$subject_id, levels = unique(trial$subject_id))
trial$visit_index <- match(trial$visit, sort(unique(trial$visit)))
trial$visit <- factor(trial$visit)
trial$arm <- factor(trial$arm, levels = c("placebo", "active"))

one <- function(name, f, d, subject, visit, correlation, weights = NULL) {
  m <- gls(f, data = d, correlation = correlation, weights = weights,
           method = "REML", control = ctl)
  X <- model.matrix(f, d)
  cl <- d[[subject]]
  target <- clubSandwich:::targetVariance(m, cl)
  sig <- lapply(target, function(v) unname(m$sigma^2 * v))
  out <- list(
    columns = colnames(X), X = unname(X), y = d[[all.vars(f)[1]]],
    subject = as.integer(cl) - 1L, visit = d[[visit]] - 1L, sigma = unname(sig),
    coef = unname(coef(m)), vcov = unname(vcov(m)),
    logLik = as.numeric(logLik(m))
  )
  cat("\n==== ", name, "\n"); print(summary(m))
  for (type in c("CR0", "CR2", "CR3")) {
    V <- vcovCR(m, cluster = cl, type = type)
    ct <- coef_test(m, vcov = V, test = "Satterthwaite")
    cat("-- ", type, "\n"); print(unclass(V)[, ]); print(ct)
    out[[type]] <- list(vcov = unname(unclass(V)[, ]), df = unname(ct$df_Satt))
  }
  out
}

fits <- list(
  fev_ar1 = one("fev_ar1", FEV1 ~ ARMCD, fev, "USUBJID", "VISITN",
                corAR1(form = ~ VISITN | USUBJID)),
  fev_cs = one("fev_cs", FEV1 ~ ARMCD, fev, "USUBJID", "VISITN",
               corCompSymm(form = ~ 1 | USUBJID)),
  fev_us = one("fev_us", FEV1 ~ ARMCD, fev, "USUBJID", "VISITN",
               corSymm(form = ~ VISITN | USUBJID), varIdent(form = ~ 1 | AVISIT)),
  fev_us_racesex = one("fev_us_racesex", FEV1 ~ RACE + SEX, fev, "USUBJID", "VISITN",
                       corSymm(form = ~ VISITN | USUBJID), varIdent(form = ~ 1 | AVISIT)),
  fev_us_full = one("fev_us_full", FEV1 ~ RACE + SEX + ARMCD * AVISIT, fev, "USUBJID", "VISITN",
                    corSymm(form = ~ VISITN | USUBJID), varIdent(form = ~ 1 | AVISIT)),
  fev_ar1_weighted = one("fev_ar1_weighted", FEV1 ~ ARMCD, fev, "USUBJID", "VISITN",
                         corAR1(form = ~ VISITN | USUBJID), varFixed(~ INVWEIGHT)),
  trial_us = one("trial_us", chg ~ visit * arm + baseline_total, trial, "subject_id", "visit_index",
                 corSymm(form = ~ visit_index | subject_id), varIdent(form = ~ 1 | visit)),
  trial_cs = one("trial_cs", chg ~ visit * arm + baseline_total, trial, "subject_id", "visit_index",
                 corCompSymm(form = ~ 1 | subject_id)),
  trial_ar1 = one("trial_ar1", chg ~ visit * arm + baseline_total, trial, "subject_id", "visit_index",
                  corAR1(form = ~ visit_index | subject_id))
)

# ---- pbkrtest on a random-intercept model of the trial
lf <- chg ~ visit * arm + baseline_total + (1 | subject_id)
lm1 <- lmer(lf, data = trial, REML = TRUE,
            control = lmerControl(optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12)))
vc <- as.data.frame(VarCorr(lm1))
p <- length(fixef(lm1))
Ls <- list(
  final = { l <- rep(0, p); names(l) <- names(fixef(lm1));
            l["armactive"] <- 1; l["visit12:armactive"] <- 1; matrix(l, nrow = 1) },
  arm = { l <- rep(0, p); l[5] <- 1; matrix(l, nrow = 1) },
  baseline = { l <- rep(0, p); l[6] <- 1; matrix(l, nrow = 1) },
  interaction = { L <- matrix(0, 3, p); L[1, 7] <- L[2, 8] <- L[3, 9] <- 1; L }
)
Va <- as.matrix(vcovAdj(lm1))
kr <- lapply(Ls, function(L) {
  krt <- KRmodcomp(lm1, L)
  list(L = unname(L), ddf = get_Lb_ddf(lm1, L), F_scaling = krt$stats$F.scaling,
       Fstat = krt$stats$Fstat)
})
cat("\n==== pbkrtest\n"); print(summary(lm1)); print(Va); str(kr)
lmm <- list(
  columns = names(fixef(lm1)), X = unname(getME(lm1, "X")), y = trial$chg,
  subject = as.integer(trial$subject_id) - 1L,
  s2_b = vc$vcov[vc$grp == "subject_id"], s2 = vc$vcov[vc$grp == "Residual"],
  coef = unname(fixef(lm1)), vcov = unname(as.matrix(vcov(lm1))),
  vcov_adj = unname(Va), tests = kr
)

writeLines(toJSON(list(gls = fits, pbkrtest = lmm), digits = NA, auto_unbox = TRUE,
                  matrix = "rowmajor"),
           "mmrm_inference_reference.json")
