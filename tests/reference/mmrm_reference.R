# Reference values for tests/models/test_mmrm.py, run offline (R is never a test
# dependency):   cd tests/reference && Rscript mmrm_reference.R > mmrm_reference.Rout 2>&1
# nlme::gls REML fits of the simulated trial (mmrm_trial.csv, from make_mmrm_trial.py)
# with unstructured (corSymm + varIdent), compound-symmetry and AR(1) covariance;
# LS means and the final-visit contrast from emmeans with Satterthwaite df.
suppressMessages({library(nlme); library(emmeans); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " nlme", as.character(packageVersion("nlme")),
    " emmeans", as.character(packageVersion("emmeans")), "\n")
d <- read.csv("mmrm_trial.csv")
d <- d[!is.na(d$chg), ]
d$visit_index <- match(d$visit, sort(unique(d$visit)))
d$visit <- factor(d$visit)
d$arm <- factor(d$arm, levels = c("placebo", "active"))
f <- chg ~ visit * arm + baseline_total
ctl <- glsControl(tolerance = 1e-10, msTol = 1e-12, maxIter = 500, msMaxIter = 500)

one <- function(name, correlation, weights = NULL) {
  m <- gls(f, data = d, correlation = correlation, weights = weights,
           method = "REML", control = ctl)
  # full covariance: the first subject with all four visits
  full <- names(which(table(d$subject_id) == 4))[1]
  V <- unclass(getVarCov(m, individual = full))
  X <- model.matrix(f, d)
  # LS means by hand (emmeans' reference grid: baseline_total at its mean), and the
  # final-visit contrast active - placebo.  emmeans cannot do Satterthwaite for these
  # gls fits ("Can't estimate Satterthwaite parameters") and fails on gls fits without
  # weights, so it is used only as a cross-check of the unstructured fit (df.error).
  grid <- expand.grid(arm = levels(d$arm), visit = levels(d$visit))
  grid$baseline_total <- mean(d$baseline_total)
  grid$arm <- factor(grid$arm, levels = levels(d$arm))
  grid$visit <- factor(grid$visit, levels = levels(d$visit))
  L <- model.matrix(delete.response(terms(f)), grid)
  es <- data.frame(visit = as.character(grid$visit), arm = as.character(grid$arm),
                   estimate = drop(L %*% coef(m)),
                   se = sqrt(diag(L %*% vcov(m) %*% t(L))))
  cL <- L[grid$visit == "12" & grid$arm == "active", ] -
        L[grid$visit == "12" & grid$arm == "placebo", ]
  ct <- list(estimate = sum(cL * coef(m)), se = sqrt(drop(t(cL) %*% vcov(m) %*% cL)))
  if (is.null(weights)) em <- NULL else
    em <- as.data.frame(summary(emmeans(m, ~ arm | visit, mode = "df.error", data = d)))
  cat("\n==== ", name, "\n"); print(summary(m)); print(V); print(es); print(ct); print(em)
  list(coef = as.list(coef(m)), se = unname(sqrt(diag(vcov(m)))),
       cov = unname(V), logLik = as.numeric(logLik(m)),
       half_logdet_xtx = as.numeric(determinant(crossprod(X))$modulus) / 2,
       nobs = nrow(d),
       lsmeans = es, contrast = ct, emmeans = em)
}

res <- list(
  unstructured = one("unstructured", corSymm(form = ~ visit_index | subject_id),
                     varIdent(form = ~ 1 | visit)),
  compound_symmetry = one("compound_symmetry", corCompSymm(form = ~ 1 | subject_id)),
  ar1 = one("ar1", corAR1(form = ~ visit_index | subject_id))
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"),
           "mmrm_reference.json")
