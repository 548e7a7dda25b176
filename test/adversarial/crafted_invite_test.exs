defmodule Keyring.Adversarial.CraftedInviteTest do
  # Attack (issue 8, item 16): a host name or garbage in an invite's address
  # hint raised inside the joiner's mesh process. Now hints are checked and
  # resolved in the joiner's own process: bad ones give
  # {:error, :bad_address_hint}, a host name works, the mesh never crashes.
  use ExUnit.Case, async: false

  import Keyring.Test.Instances

  alias Keyring.Mesh.Invite
  alias Keyring.Native

  setup do
    [admin, joiner] = [start_instance(:admin), start_instance(:joiner)]
    {:ok, ring} = Keyring.Ring.create("ops", instance: admin)
    %{admin: admin, joiner: joiner, ring: ring}
  end

  defp invite(ctx, hint) do
    keypair = Keyring.Instance.fetch!(ctx.admin, :keypair)
    expires = System.os_time(:millisecond) + 60_000
    token = :crypto.strong_rand_bytes(16)
    {:ok, bytes} = Native.invite_create(keypair, ctx.ring, token, expires, true, hint, [])
    Invite.encode(bytes)
  end

  defp mesh_pid(instance), do: Process.whereis(Keyring.Mesh.Server.server(instance))

  test "garbage address hints are refused without touching the mesh process", ctx do
    pid = mesh_pid(ctx.joiner)

    for hint <- [
          "",
          "garbage",
          "a b c",
          "1.2.3.4:99999 1.2.3.4:1",
          "nonsense!! host:1",
          "[::1 1.2.3.4:5",
          String.duplicate("x", 200) <> ":1 y:2",
          "127.0.0.1:0 127.0.0.1:0"
        ] do
      assert {:error, :bad_address_hint} =
               Keyring.join(invite(ctx, hint), instance: ctx.joiner, timeout: 2_000),
             "hint #{inspect(hint)}"
    end

    assert mesh_pid(ctx.joiner) == pid
  end

  test "a host name that resolves is used; one that does not is refused", ctx do
    {mesh_addr, join_addr} = Keyring.Ring.addresses(instance: ctx.admin)
    [_, mesh_port] = String.split(mesh_addr, ":")
    [_, join_port] = String.split(join_addr, ":")
    hint = "localhost:#{mesh_port} localhost:#{join_port}"
    ring = ctx.ring
    assert {:ok, ^ring} = Keyring.join(invite(ctx, hint), instance: ctx.joiner)

    unknown = "no-such-host.invalid:#{mesh_port} no-such-host.invalid:#{join_port}"

    assert {:error, :bad_address_hint} =
             Keyring.join(invite(ctx, unknown), instance: ctx.joiner, timeout: 2_000)
  end

  test "crash reports and :sys.get_status never show keys or the passphrase" do
    instance = start_instance(:secretive, passphrase: "correct horse battery")
    {:ok, _} = Keyring.Ring.create("ops", instance: instance)
    status = :sys.get_status(mesh_pid(instance)) |> inspect(limit: :infinity)
    keypair = Keyring.Instance.fetch!(instance, :keypair)
    refute status =~ "correct horse"
    refute status =~ inspect(keypair)
    assert status =~ ":redacted"
  end
end
