"""What the server tells its operators: log lines with request ids (`logs`), and what the
service reports about each chat turn for the metrics (`observe`); no metrics library here."""
