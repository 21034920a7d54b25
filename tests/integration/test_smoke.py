async def test_hi(fake, bot):
    msg = await fake.send(fake.bob, "!hi")
    reply = await fake.reply_to(msg)
    assert "Hi bob" in reply.content
    assert reply.reference_id == msg.id
