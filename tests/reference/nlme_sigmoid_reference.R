# Reference values for tests/models/test_nlme.py: the D50 sigmoid nonlinear mixed
# model fitted by R's nlme::nlme (Lindstrom-Bates alternating PNLS / LME steps, ML),
# run offline (R is never a test dependency):
#   cd tests/reference && Rscript nlme_sigmoid_reference.R > nlme_sigmoid_reference.Rout 2>&1
# Reads nlme_sigmoid_data.csv (written by nlme_sigmoid_make_data.py: 100 patients,
# 3-8 visits, continuous outcome `frs`), writes nlme_sigmoid_reference.json.
#
# Model: frs = 48 / (1 + exp(-(exp(lD50) - t) / exp(ldx))) + e, (lD50, ldx) per
# patient = fixed + b, b ~ N(0, Psi) with Psi 2 x 2 unstructured (pdSymm), e ~ N(0,
# sigma^2): alsprog's NonlinearMixedModel.
#
# Fits:
#   site        fixed = lD50 + ldx ~ onset_site, tight control (tolerance 1e-10,
#               pnlsTol 1e-7, msTol 1e-12, minScale 1e-10, enough iterations) so
#               that the fixed point is reached to ~8 digits (pnlsTol 1e-8 stops
#               with "step halving factor reduced below minimum in PNLS step")
#   intercept   fixed = lD50 + ldx ~ 1, tight control
#   site_default  the site fit with nlmeControl()'s defaults (tolerance 1e-5,
#               pnlsTol 1e-3, pnlsMaxIter 7): how far nlme's default stopping is
#               from the fixed point
#   small       fixed = lD50 + ldx ~ 1, tight control, on nlme_sigmoid_small.csv
#               (24 patients x 4 visits): the SD of ldx is near zero and the
#               correlation near -1 (the likelihood is flat along both; the
#               intervals are degenerate; were apVar not positive definite,
#               intervals() would refuse and its fields be null here)
suppressMessages({library(nlme); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " nlme", as.character(packageVersion("nlme")), "\n")

d <- read.csv("nlme_sigmoid_data.csv")
d$t <- d$months_since_onset
d$onset_site <- factor(d$onset_site, levels = c("bulbar", "spinal"))
dg <- groupedData(frs ~ t | subject_id, data = d)

tight <- nlmeControl(maxIter = 500, pnlsMaxIter = 100, msMaxIter = 500,
                     tolerance = 1e-10, pnlsTol = 1e-7, msTol = 1e-12,
                     minScale = 1e-10)

sig <- frs ~ 48 / (1 + exp(-(exp(lD50) - t) / exp(ldx)))

summarise <- function(fit) {
  print(summary(fit))
  vc <- as.matrix(fit$modelStruct$reStruct[[1]])  # Psi / sigma^2
  s <- fit$sigma
  Psi <- vc * s^2
  iv <- tryCatch(intervals(fit, which = "all"), error = function(e) NULL)
  print(iv)
  re <- ranef(fit)
  tt <- summary(fit)$tTable
  list(
    fixef = as.list(fixef(fit)),
    se = as.list(sqrt(diag(vcov(fit)))),
    vcov = unname(vcov(fit)),
    df = as.list(tt[, "DF"]),
    t = as.list(tt[, "t-value"]),
    p = as.list(tt[, "p-value"]),
    psi = unname(Psi),
    sd = as.list(sqrt(diag(Psi))),
    corr = Psi[1, 2] / sqrt(Psi[1, 1] * Psi[2, 2]),
    sigma = s,
    logLik = as.numeric(logLik(fit)),
    df_logLik = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit),
    nobs = nobs(fit),
    ranef = list(subject_id = rownames(re), lD50 = re[, 1], ldx = re[, 2]),
    fixed_ci = if (is.null(iv)) NULL else
      list(lower = unname(iv$fixed[, "lower"]), upper = unname(iv$fixed[, "upper"])),
    re_ci = if (is.null(iv)) NULL else list(
      names = rownames(iv$reStruct$subject_id),
      lower = unname(iv$reStruct$subject_id[, "lower"]),
      est = unname(iv$reStruct$subject_id[, "est."]),
      upper = unname(iv$reStruct$subject_id[, "upper"])
    ),
    sigma_ci = if (is.null(iv)) NULL else unname(iv$sigma),
    apVar = if (is.character(fit$apVar)) fit$apVar else unname(unclass(fit$apVar)),
    apVar_names = colnames(fit$apVar),
    iterations = fit$numIter
  )
}

out <- list()
cat("\n==== site (tight)\n")
f1 <- nlme(sig, data = dg, fixed = lD50 + ldx ~ onset_site,
           random = pdSymm(lD50 + ldx ~ 1), groups = ~subject_id,
           start = c(log(30), 0, log(10), 0), method = "ML", control = tight)
out$site <- summarise(f1)

cat("\n==== intercept (tight)\n")
f2 <- nlme(sig, data = dg, fixed = lD50 + ldx ~ 1,
           random = pdSymm(lD50 + ldx ~ 1), groups = ~subject_id,
           start = c(log(30), log(10)), method = "ML", control = tight)
out$intercept <- summarise(f2)

cat("\n==== site (nlmeControl defaults)\n")
f3 <- nlme(sig, data = dg, fixed = lD50 + ldx ~ onset_site,
           random = pdSymm(lD50 + ldx ~ 1), groups = ~subject_id,
           start = c(log(30), 0, log(10), 0), method = "ML")
out$site_default <- summarise(f3)

cat("\n==== small (tight)\n")
ds <- read.csv("nlme_sigmoid_small.csv")
ds$t <- ds$months_since_onset
dsg <- groupedData(frs ~ t | subject_id, data = ds)
f4 <- nlme(sig, data = dsg, fixed = lD50 + ldx ~ 1,
           random = pdSymm(lD50 + ldx ~ 1), groups = ~subject_id,
           start = c(log(30), log(10)), method = "ML", control = tight)
out$small <- summarise(f4)

out$versions <- list(R = paste(R.version$major, R.version$minor, sep = "."),
                     nlme = as.character(packageVersion("nlme")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "nlme_sigmoid_reference.json")
