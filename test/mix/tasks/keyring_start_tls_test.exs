defmodule Mix.Tasks.Keyring.StartTlsTest do
  # `mix keyring.start --tls-dist`: the task restarts itself in a VM booted
  # with TLS distribution; nodes with a certificate from the cluster CA
  # connect, a plain TCP VM with the cookie cannot; and the restarted VM
  # does not outlive the task's own VM, however that one ends.
  use ExUnit.Case, async: true

  alias Keyring.Cluster.{Cookie, Distribution}
  alias Keyring.Test.{Certs, DistPeer, MixNode, TmpDir}

  @moduletag timeout: 300_000
  @moduletag :openssl

  test "--tls-dist runs distribution over mutually verified TLS" do
    dir = TmpDir.new("keyring-mix-tls")
    ca = Certs.ca(dir, "ca")
    server = Certs.node(dir, ca, "server")
    client = Certs.node(dir, ca, "client")

    node =
      MixNode.start(DistPeer.unique("mix_tls"), [
        "--data-dir",
        Path.join(dir, "data"),
        "--tls-dist",
        server.pem,
        "--tls-dist-key",
        server.key,
        "--tls-dist-ca",
        ca
      ])

    on_exit(fn -> MixNode.stop(node) end)
    assert node.banner =~ ~r/distribution 127\.0\.0\.1:\d+ \(TLS\)/
    {:ok, cookie, _} = Cookie.resolve(dir: Path.expand(".keyring"))

    tls = [certfile: client.pem, keyfile: client.key, cacertfile: ca]
    name = DistPeer.unique("tls_client")
    {:ok, flags} = Distribution.tls_erl_args(tls, Path.join(dir, name <> ".conf"))
    {peer, _, _} = DistPeer.start(name, [cookie: cookie, tls: tls], flags)
    on_exit(fn -> DistPeer.stop(peer) end)
    assert DistPeer.call(peer, :net_adm, :ping, [node.node]) == :pong

    {plain, _, _} = DistPeer.start(DistPeer.unique("plain_client"), cookie: cookie)
    on_exit(fn -> DistPeer.stop(plain) end)
    assert DistPeer.call(plain, :net_adm, :ping, [node.node]) == :pang

    # The task's VM is killed outright: the TLS VM it started goes too.
    assert MixNode.registered?(node)
    MixNode.stop(node)

    Keyring.Test.Eventually.eventually(
      fn -> not MixNode.registered?(node) end,
      30_000,
      "the restarted TLS VM to exit"
    )
  end
end
