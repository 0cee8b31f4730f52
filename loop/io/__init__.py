"""Reading lab sheets (CSV and Excel): the front door that the release-curve reader and the import share."""
