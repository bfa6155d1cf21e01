"""TWP auth method ``WindowsSecurity`` (admin guide 6.2): HTTP Negotiate with Kerberos or NTLM, Kerberos passwords."""
