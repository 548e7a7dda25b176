defmodule Keyring.Adversarial.AppSignatureConfusionTest do
  # Issue 8, item 4: Keyring.Identity.sign/2 signed any bytes with the key
  # that also signs membership entries and invites. An application that
  # signs what a peer hands it could be made to sign an entry adding the
  # attacker to a keyring this node administers, or an invite. Now
  # application signatures cover "keyring/app/v1\0" <> message.
  #
  # Each attack asks the node to sign the exact bytes the protocol signature
  # covers (and, in case the domain is guessed wrong, the bare body), splices
  # the answer into the protocol message, and checks it is refused. Splicing
  # the genuine signature back shows the splice is at the right place.
  use ExUnit.Case, async: true

  import ExUnit.CaptureLog

  alias Keyring.Identity
  alias Keyring.Identity.KeyFile
  alias Keyring.Native
  alias Keyring.Test.TmpDir

  @entry_domain "keyring/membership-entry/v1\0"
  @invite_domain "keyring/invite/v1\0"

  setup do
    dir = TmpDir.new()
    name = :"sigconf_#{System.unique_integer([:positive])}"
    capture_log(fn -> start_supervised!({Keyring, name: name, data_dir: dir}) end)
    {:ok, node_key} = KeyFile.load_secret(KeyFile.path(dir), nil)
    %{name: name, node_key: node_key, now: System.os_time(:millisecond)}
  end

  defp asked_forms(domain, unsigned), do: [domain <> unsigned, unsigned]

  test "an application signature never passes as a membership entry signature", ctx do
    # A keyring in which this node is an admin.
    {:ok, root} = Native.keypair_generate()
    pk = Identity.public_key(instance: ctx.name)
    {:ok, entries} = Native.log_create(root, "ops", [pk], ctx.now)
    attacker = :crypto.strong_rand_bytes(32)

    # The entry the attacker wants: this node adding the attacker.
    {:ok, entry} =
      Native.log_append(entries, ctx.node_key, {:add_member, attacker, 0, []}, ctx.now)

    <<len::16, body::binary-size(len), 1, 1, 64::16, genuine::binary-size(64)>> = entry
    assert {:ok, _} = Native.log_verify(entries ++ [entry], ctx.now)

    for asked <- asked_forms(@entry_domain, body) do
      signature = Identity.sign(asked, instance: ctx.name)
      forged = <<len::16, body::binary, 1, 1, 64::16, signature::binary>>
      assert {:error, _} = Native.log_verify(entries ++ [forged], ctx.now)
    end

    resigned = <<len::16, body::binary, 1, 1, 64::16, genuine::binary>>
    assert {:ok, _} = Native.log_verify(entries ++ [resigned], ctx.now)
  end

  test "an application signature never passes as an invite signature", ctx do
    {:ok, ring} = Keyring.Ring.create("ops", instance: ctx.name)
    {:ok, text} = Keyring.Ring.invite(ring, instance: ctx.name)
    {:ok, invite} = Keyring.Mesh.Invite.decode(text)
    unsigned = binary_part(invite, 0, byte_size(invite) - 64)
    genuine = binary_part(invite, byte_size(invite), -64)
    assert {:ok, _} = Native.invite_verify(invite, ctx.now)

    for asked <- asked_forms(@invite_domain, unsigned), domain <- [nil, "keyring/invite/v1"] do
      opts = if domain, do: [instance: ctx.name, domain: domain], else: [instance: ctx.name]
      assert {:error, _} = Native.invite_verify(unsigned <> Identity.sign(asked, opts), ctx.now)
    end

    assert {:ok, _} = Native.invite_verify(unsigned <> genuine, ctx.now)
  end

  test "a signature made in one application domain does not verify in another", ctx do
    pk = Identity.public_key(instance: ctx.name)
    receipt = Identity.sign("paid 42", instance: ctx.name, domain: "shop/receipt")
    assert Identity.verify(pk, "paid 42", receipt, domain: "shop/receipt")
    refute Identity.verify(pk, "paid 42", receipt, domain: "shop/refund")
    refute Identity.verify(pk, "paid 42", receipt)

    refute Identity.verify(pk, "paid 42", Identity.sign("paid 42", instance: ctx.name),
             domain: "shop/receipt"
           )

    for bad <- ["", "has space", "nul\0byte", String.duplicate("a", 65)] do
      assert_raise ArgumentError, fn -> Identity.sign("m", instance: ctx.name, domain: bad) end
    end
  end
end
