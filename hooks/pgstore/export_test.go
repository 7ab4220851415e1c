package pgstore

// Migrations lets the tests build a database of an older version.
var Migrations = migrations
