defmodule Keyring.Test.Certs do
  @moduledoc false
  # Certificates for TLS distribution, made with openssl exactly as the
  # README says: an Ed25519 CA, and per node an Ed25519 key and a
  # certificate naming its host, for both ends of a connection.

  @doc "A CA in `dir`: returns the path of its certificate (key beside it)."
  def ca(dir, name) do
    key = Path.join(dir, name <> ".key")
    pem = Path.join(dir, name <> ".pem")
    openssl!(~w(genpkey -algorithm ed25519 -out) ++ [key])
    openssl!(~w(req -new -x509 -key) ++ [key, "-subj", "/CN=#{name}", "-days", "30", "-out", pem])
    pem
  end

  @doc "A node certificate for `host`, signed by the CA at `ca_pem`."
  def node(dir, ca_pem, name, host \\ "127.0.0.1") do
    ca_key = String.replace_suffix(ca_pem, ".pem", ".key")
    [key, csr, pem, ext] = for ext <- ~w(key csr pem ext), do: Path.join(dir, "#{name}.#{ext}")

    File.write!(ext, """
    subjectAltName=DNS:#{host},IP:#{host}
    extendedKeyUsage=serverAuth,clientAuth
    keyUsage=digitalSignature
    """)

    openssl!(~w(genpkey -algorithm ed25519 -out) ++ [key])
    openssl!(~w(req -new -key) ++ [key, "-subj", "/CN=#{host}", "-out", csr])

    openssl!(
      ~w(x509 -req -in) ++
        [csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial", "-days", "30"] ++
        ["-extfile", ext, "-out", pem]
    )

    File.chmod!(key, 0o600)
    %{pem: pem, key: key}
  end

  defp openssl!(args) do
    {out, status} = System.cmd("openssl", args, stderr_to_stdout: true)
    if status != 0, do: raise("openssl #{Enum.join(args, " ")} failed: #{out}")
  end
end
