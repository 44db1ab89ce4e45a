# Reference values for test_converged_matches_nlme_gls_bodyweight in
# tests/models/test_mmrm.py, run offline (R is a reference only, never a test or
# runtime dependency; Debian: apt-get install r-base-core r-cran-nlme r-cran-jsonlite):
#   cd tests/reference && Rscript mmrm_bodyweight.R > mmrm_bodyweight.Rout 2>&1
#
# Data: nlme's BodyWeight (Crowder & Hand 1990: body weight in grams of 16 rats on 3
# diets, weighed on days 1, 8, 15, ..., 64), written unchanged to mmrm_bodyweight.csv.
# Model: an MMRM of the fortnightly weights (days 8, 22, 36, 50, 64) adjusted for the
# day-1 weight, weight ~ Time * Diet + baseline, unstructured covariance over the 5
# visits (corSymm + varIdent by visit), REML.  alsprog up to issue 17 reported
# converged_ = False for this converged fit.
#
# Precision: gls passes only iter.max to nlminb, whose default rel.tol = 1e-10 stops
# the REML maximisation about 1e-9 short of the maximum, leaving coefficients wrong
# in the 5th digit (the default fit is printed below).  To give values to 1e-6, the
# second fit runs nlme's own gls with one change: after each nlminb call, Newton steps
# on nlme's own REML objective (-logLik(glsSt, pars)) with Richardson-extrapolated
# central-difference derivatives, until the step is below 1e-10.  Both fits and the
# difference between them are printed.
suppressMessages({library(nlme); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " nlme", as.character(packageVersion("nlme")),
    " jsonlite", as.character(packageVersion("jsonlite")), "\n")
bw <- as.data.frame(BodyWeight)
out <- data.frame(Rat = as.integer(as.character(bw$Rat)), Time = bw$Time,
                  Diet = as.integer(as.character(bw$Diet)), weight = bw$weight)
out <- out[order(out$Rat, out$Time), ]
write.csv(out, "mmrm_bodyweight.csv", row.names = FALSE)

d <- read.csv("mmrm_bodyweight.csv")
base <- d[d$Time == 1, c("Rat", "weight")]
names(base)[2] <- "baseline"
d <- merge(d[d$Time %in% c(8, 22, 36, 50, 64), ], base, by = "Rat")
d <- d[order(d$Rat, d$Time), ]
d$visit_index <- match(d$Time, sort(unique(d$Time)))
d$Time <- factor(d$Time)
d$Diet <- factor(d$Diet)
d$Rat <- factor(d$Rat)
f <- weight ~ Time * Diet + baseline
ctl <- glsControl(tolerance = 1e-12, msTol = 1e-14, maxIter = 1000, msMaxIter = 1000)

# Richardson-extrapolated central differences: error O(h^4).
grad_fd <- function(fn, x, h = 1e-3) {
  d1 <- function(k, s) { e <- replace(numeric(length(x)), k, s)
                         (fn(x + e) - fn(x - e)) / (2 * s) }
  vapply(seq_along(x), function(k) (4 * d1(k, h / 2) - d1(k, h)) / 3, 0)
}
newton_polish <- function(par, fn) {
  for (it in 1:20) {
    g <- grad_fd(fn, par)
    H <- sapply(seq_along(par), function(k) {
      e <- replace(numeric(length(par)), k, 1e-4)
      (grad_fd(fn, par + e) - grad_fd(fn, par - e)) / 2e-4
    })
    H <- (H + t(H)) / 2
    step <- solve(H, g)
    cat(sprintf("  Newton %d: objective %.12f, max |gradient| %.2e, max |step| %.2e\n",
                it, fn(par), max(abs(g)), max(abs(step))))
    if (fn(par - step) > fn(par)) break
    par <- par - step
    if (max(abs(step)) < 1e-10) break
  }
  par
}
src <- deparse(gls)
hook <- "coef(glsSt) <- optRes$par"
stopifnot(sum(grepl(hook, src, fixed = TRUE)) == 1)
src <- sub(hook, "coef(glsSt) <- newton_polish(optRes$par, function(p) -logLik(glsSt, p))",
           src, fixed = TRUE)
gls_polished <- eval(parse(text = src))
environment(gls_polished) <- asNamespace("nlme")

fit <- function(fitter) {
  fitter(f, data = d, correlation = corSymm(form = ~ visit_index | Rat),
         weights = varIdent(form = ~ 1 | Time), method = "REML", control = ctl)
}
cat("\n==== nlme::gls, default optimiser settings\n")
m0 <- fit(gls)
cat("logLik", format(as.numeric(logLik(m0)), digits = 15), "\n")
print(coef(m0))
cat("\n==== nlme::gls with Newton polishing of nlme's REML objective\n")
m <- fit(gls_polished)
print(summary(m))
V <- unclass(getVarCov(m, individual = "1"))
print(V)
cat("logLik", format(as.numeric(logLik(m)), digits = 15), "\n")
cat("logLik gain over the default fit", as.numeric(logLik(m) - logLik(m0)), "\n")
cat("largest relative coefficient change", max(abs(coef(m) / coef(m0) - 1)), "\n")
res <- list(
  coef = as.list(coef(m)),
  se = unname(sqrt(diag(vcov(m)))),
  cov = unname(V),
  logLik = as.numeric(logLik(m)),
  nobs = nrow(d),
  visits = sort(unique(as.integer(as.character(d$Time))))
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "mmrm_bodyweight.json")
