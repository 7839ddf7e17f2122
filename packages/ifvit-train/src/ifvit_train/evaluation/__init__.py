"""Evaluation: FVC protocol runs (`evaluate`), metrics (EER, FMR/FNMR, DET), plots, threshold
calibration (`calibrate`) and closed-set identification (`identification`)."""
